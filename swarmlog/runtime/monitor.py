"""The monitor process: samples hardware and model servers, runs the detectors and the escalation
rules over the log, and delivers alerts (file first, then the log line, then webhooks).

Every sample is appended before any rule reads it, and the rules are pure folds of the log
(``escalation.pipeline.react``), so a replay reaches the same firings. Delivery runs in the
background: a dead or slow webhook never holds up the team.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import msgspec

from swarmlog.errors import ConfigError
from swarmlog.escalation.delivery import announce, deliver
from swarmlog.escalation.pipeline import EMPTY as EMERGENCY_EMPTY
from swarmlog.escalation.pipeline import EmergencyState, react
from swarmlog.escalation.settings import (
    Webhook,
    alert_settings,
    escalation_settings,
    night_settings,
)
from swarmlog.events import (
    AlertDelivered,
    AlertRaised,
    ConfigLoaded,
    EscalationRaised,
    Event,
    EventBase,
    ModelServerSampled,
    RunEnded,
)
from swarmlog.hardware import Probe
from swarmlog.log import EventLog
from swarmlog.render import make_environment, render_alert_event
from swarmlog.runtime.calls import endpoint_client, tls_verify
from swarmlog.runtime.context import EMPTY_CONTEXT, RunContext, apply_context
from swarmlog.runtime.doorbell import Doorbell
from swarmlog.servers import probe_server
from swarmlog.workspace import Workspace, write_atomic

__all__ = ["Monitor", "serve_monitor"]


class Monitor:
    """Watch the run; append what the rules conclude; tell the human."""

    def __init__(
        self,
        ws: Workspace,
        log: EventLog,
        *,
        interval_s: float = 5.0,
        probe: Probe | None = None,
        clock: Callable[[], float] = time.time,
        client: httpx.AsyncClient | None = None,
        sample: bool = True,
    ) -> None:
        self.ws = ws
        self.log = log
        self.interval_s = interval_s
        self.probe = probe or Probe()
        self.clock = clock
        self.client = client
        self.sampling = sample
        self.ctx: RunContext = EMPTY_CONTEXT
        self.emergency: EmergencyState = EMERGENCY_EMPTY
        self.delivered: set[str] = set()
        # Alerts of the run as stored, and for each (alert, channel) but the file whether it
        # was delivered and the last attempt made: what a monitor that died left undone.
        self._alerts: dict[str, AlertRaised] = {}
        self._tries: dict[tuple[str, str], tuple[bool, int]] = {}
        self._reader = log.reader(0)
        self._stop = asyncio.Event()
        self._deliveries: set[asyncio.Task[Any]] = set()
        self._probes: dict[str, httpx.AsyncClient] = {}  # per model server, see _probe_client
        self._env = make_environment(ws)
        self._settings = escalation_settings({})
        self._announced = log.last_seq()  # lines for older escalations were printed already

    def stop(self) -> None:
        self._stop.set()

    def append(self, events: Sequence[EventBase]) -> list[Event]:
        stamped = [
            msgspec.structs.replace(e, run=e.run or self.ctx.run, actor=e.actor or "monitor")
            for e in events
        ]
        return self.log.append(stamped)

    def step(self) -> list[AlertRaised]:
        """Fold new events, append the rules' reactions; return alerts not yet delivered."""
        alerts: list[AlertRaised] = []
        while batch := self._reader.poll():
            for event in batch:
                self.ctx = apply_context(self.ctx, event)
                if isinstance(event, ConfigLoaded):
                    self._settings = night_settings(event.config)
                self.emergency, out = react(self.emergency, event, self._settings)
                if out:
                    self.append(out)
                if isinstance(event, AlertDelivered):
                    if event.channel == "file":
                        self.delivered.add(event.alert_id)
                    else:
                        key = (event.alert_id, event.channel)
                        ok, _ = self._tries.get(key, (False, 0))
                        self._tries[key] = (ok or event.ok, event.attempt)
                if isinstance(event, AlertRaised):
                    alerts.append(event)
                    self._alerts[event.alert_id] = event
                elif isinstance(event, EscalationRaised | RunEnded) and event.seq > self._announced:
                    announce(event, run_log=self.ws.memory / "logs" / "run.log")
                    self._announced = event.seq
        return [a for a in alerts if a.alert_id not in self.delivered]

    async def sample(self) -> None:
        """Append one hardware sample and one sample per configured model server."""
        events: list[EventBase] = [self.probe.sample()]
        seen: set[str] = set()
        for profile in self.ctx.config.get("models", {}).values():
            endpoint, api = str(profile.get("endpoint", "")), str(profile.get("api", "ollama"))
            if not endpoint or endpoint in seen or api == "anthropic":
                continue
            seen.add(endpoint)
            api = "ollama" if api == "sim" else api
            try:
                client = self._probe_client(endpoint)
            except ConfigError as exc:  # SSL_CERT_FILE unreadable: the calls fail alike
                events.append(
                    ModelServerSampled(
                        endpoint=endpoint, api=api, reachable=False, error=str(exc)[:300]
                    )
                )
                continue
            events.append(await probe_server(client, endpoint, api))
        self.append(events)

    def _probe_client(self, endpoint: str) -> httpx.AsyncClient:
        """The client that probes ``endpoint``: the one given, else one that reaches the server
        as the night's calls do (``runtime.calls.endpoint_client``): a local Ollama directly,
        not through an ``HTTP_PROXY`` meant for the internet, which read it unreachable."""
        if self.client is not None:
            return self.client
        if endpoint not in self._probes:
            self._probes[endpoint] = endpoint_client(endpoint, timeout_s=5.0)
        return self._probes[endpoint]

    def _write_alert(self, alert: AlertRaised) -> Path:
        rel, text = render_alert_event(alert, self._env)
        path = self.ws.root / rel
        write_atomic(path, text.encode("utf-8"))
        return path

    async def _deliver(
        self,
        alert: AlertRaised,
        client: httpx.AsyncClient,
        *,
        done: tuple[bool, Sequence[Webhook]] | None = None,
    ) -> None:
        """Deliver ``alert`` to every channel, or with ``done`` = (line, hooks) finish what a
        killed monitor left undone after the file: the greppable line if ``line``, then
        ``hooks`` (their attempts start again)."""
        settings = alert_settings(self.ctx.config.get("alerts", {}))
        await deliver(
            alert,
            write_file=self._write_alert if done is None else None,
            line=True if done is None else done[0],
            webhooks=settings.webhooks if done is None else done[1],
            client=client,
            append=self.append,
            run_log=self.ws.memory / "logs" / "run.log",
            rng=random.Random(alert.seq),
            backoff_s=settings.backoff_s,
            backoff_max_s=settings.backoff_max_s,
        )

    def unfinished(self) -> list[tuple[AlertRaised, bool, list[Webhook]]]:
        """The run's alerts whose file was delivered but not every other channel: the monitor
        delivering them died (killed, or its supervisor was) after the file. For each: whether
        the greppable line is still to be written (no attempt recorded) and the webhooks still to
        post to (neither answered ok nor used up their ``max_attempts``)."""
        hooks = alert_settings(self.ctx.config.get("alerts", {})).webhooks
        out = []
        for alert_id, alert in self._alerts.items():
            if alert_id not in self.delivered or alert.run != self.ctx.run:
                continue
            line = (alert_id, "log") not in self._tries
            left = []
            for hook in hooks:
                ok, tried = self._tries.get((alert_id, f"webhook:{hook.name}"), (False, 0))
                if hook.min_level <= alert.level and not ok and tried < hook.max_attempts:
                    left.append(hook)
            if line or left:
                out.append((alert, line, left))
        return out

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def run(self) -> None:
        """Monitor until the run ends or ``stop()`` is called."""
        client = self.client or _webhook_client()
        next_sample = 0.0
        first = True
        try:
            async with Doorbell(self.log) as bell:
                while not self._stop.is_set():
                    fresh = self.step()
                    if first:  # what an earlier monitor of this run left half delivered
                        first = False
                        for alert, line, hooks in self.unfinished():
                            self._spawn(self._deliver(alert, client, done=(line, hooks)))
                    for alert in fresh:
                        self.delivered.add(alert.alert_id)
                        self._spawn(self._deliver(alert, client))
                    if self.ctx.ended:
                        break
                    if self.sampling and self.ctx.run and time.monotonic() >= next_sample:
                        next_sample = time.monotonic() + self.interval_s
                        await self.sample()
                    await bell.wait(min(self.interval_s, 1.0))
            if self._deliveries:  # let alerts raised at the very end reach the human
                await asyncio.wait(self._deliveries, timeout=10.0)
        finally:
            for task in self._deliveries:
                task.cancel()
            if self.client is None:
                for each in [client, *self._probes.values()]:
                    with contextlib.suppress(Exception):
                        await each.aclose()
                self._probes.clear()


def _webhook_client() -> httpx.AsyncClient:
    """The client that posts alerts to webhooks: the environment's proxy and CA certificates.

    An ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` that cannot be read (``doctor`` fails its 'TLS trust'
    check) made httpx raise here and the monitor die at its start, taking every alert with it;
    the hooks are posted with httpx's default CA certificates instead, and it says so.
    """
    try:
        return httpx.AsyncClient(timeout=5.0, verify=tls_verify())
    except ConfigError as exc:
        print(f"monitor: {exc}; webhooks use the default CA certificates", file=sys.stderr)
        import certifi

        default = ssl.create_default_context(cafile=certifi.where())
        return httpx.AsyncClient(timeout=5.0, verify=default)


def serve_monitor(ws: Workspace, *, interval_s: float = 5.0, log_at: str | None = None) -> None:
    """Run the monitor process until the run ends, on the log at ``log_at`` (default: selected)."""
    from swarmlog.runtime.process import open_run_log, serve

    log = open_run_log(ws, log_at)
    asyncio.run(serve(lambda: Monitor(ws, log, interval_s=interval_s)))
