"""Alert delivery (issue 7) against a real loopback HTTP server: file first, every attempt kept."""

from __future__ import annotations

import io
import json
import random
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from swarmlog.escalation.delivery import backoff_delay, deliver
from swarmlog.escalation.settings import Webhook
from swarmlog.events import AlertDelivered, AlertRaised, EventBase

pytestmark = pytest.mark.anyio

ALERT = AlertRaised(
    alert_id="A1",
    level=3,
    rule="memory",
    title="EMERGENCY level 3: memory",
    summary="memory use on box is 97% (more than 90%)",
    evidence=(4, 5),
    actions=("All agents are paused.",),
    advice=("Fix the cause, then acknowledge so the team continues: swarmlog ack A1",),
    escalation_id="E1",
    run="night-1",
    seq=6,
    ts=1_795_000_000.0,
)


class Hook:
    """A loopback webhook server recording every request; behaviour set per test."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []  # popped per request; 200 when empty
        self.release = threading.Event()
        self.hang = False
        self.on_request: Any = None
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                if hook.on_request:
                    hook.on_request()
                if hook.hang:
                    hook.release.wait(5)
                status = hook.statuses.pop(0) if hook.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    h.thread.start()
    try:
        yield h
    finally:
        h.release.set()
        h.server.shutdown()
        h.server.server_close()


@pytest.fixture
def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sink:
    """What deliver appends, the alert file it writes, and the sleeps it asks for."""

    def __init__(self, tmp_path: Path) -> None:
        self.appended: list[EventBase] = []
        self.path = tmp_path / "alerts" / "ALERT-20261123T000000Z-6.md"
        self.run_log = tmp_path / "memory" / "run.log"
        self.sleeps: list[float] = []
        self.stderr = io.StringIO()

    def write_file(self, alert: AlertRaised) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(f"# {alert.title}\n")
        return self.path

    def append(self, events: list[EventBase]) -> None:
        self.appended.extend(events)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    @property
    def records(self) -> list[AlertDelivered]:
        return [e for e in self.appended if isinstance(e, AlertDelivered)]

    async def run(self, webhooks: list[Webhook], **kw: Any) -> list[AlertDelivered]:
        async with httpx.AsyncClient() as client:
            return await deliver(
                ALERT,
                write_file=self.write_file,
                webhooks=webhooks,
                client=client,
                append=self.append,
                run_log=self.run_log,
                stderr=self.stderr,
                sleep=self.sleep,
                rng=random.Random(1),
                **kw,
            )


async def test_payload_shapes_and_file_first(tmp_path: Path, hook: Hook) -> None:
    sink = Sink(tmp_path)
    seen_file: list[bool] = []
    hook.on_request = lambda: seen_file.append(sink.path.exists())
    hooks = [
        Webhook(name="gen", url=hook.url("/json"), kind="json"),
        Webhook(name="phone", url=hook.url("/night-alerts"), kind="ntfy"),
        Webhook(name="chat", url=hook.url("/slack"), kind="slack"),
        Webhook(name="quiet", url=hook.url("/quiet"), min_level=4),  # level 3 is below it
    ]
    out = await sink.run(hooks)
    assert out == sink.records
    assert [(r.channel, r.ok) for r in out[:2]] == [("file", True), ("log", True)]
    assert sorted((r.channel, r.ok, r.status) for r in out[2:]) == [
        ("webhook:chat", True, 200),
        ("webhook:gen", True, 200),
        ("webhook:phone", True, 200),
    ]
    assert seen_file == [True, True, True]  # the file existed before any webhook was tried
    by_path = {r["path"]: r for r in hook.requests}
    assert set(by_path) == {"/json", "/night-alerts", "/slack"}
    generic = json.loads(by_path["/json"]["body"])
    assert generic["alert_id"] == "A1" and generic["level"] == 3 and generic["evidence"] == [4, 5]
    assert generic["line"].startswith("EMERGENCY level=3 rule=memory run=night-1 seq=6")
    ntfy = by_path["/night-alerts"]
    assert ntfy["headers"]["Priority"] == "4"
    assert ntfy["headers"]["Title"].startswith("EMERGENCY level=3")
    assert "rotating_light" in ntfy["headers"]["Tags"]
    assert b"swarmlog ack A1" in ntfy["body"]
    slack = json.loads(by_path["/slack"]["body"])
    assert set(slack) == {"text"} and "swarmlog ack A1" in slack["text"]
    # The greppable line went to stderr and to the run's log file.
    line = sink.stderr.getvalue().strip()
    assert line.startswith("EMERGENCY level=3 rule=memory run=night-1")
    assert sink.run_log.read_text().strip() == line


async def test_dead_webhook_keeps_the_file_and_records_every_failed_attempt(
    tmp_path: Path, dead_port: int
) -> None:
    sink = Sink(tmp_path)
    url = f"http://127.0.0.1:{dead_port}/hook"
    out = await sink.run([Webhook(name="dead", url=url, max_attempts=3, timeout_s=1.0)])
    assert sink.path.exists()
    hooks = [r for r in out if r.channel == "webhook:dead"]
    assert [(r.attempt, r.ok) for r in hooks] == [(1, False), (2, False), (3, False)]
    assert all("ConnectError" in r.error for r in hooks)
    # Exponential back-off with jitter between attempts, none after the last.
    assert len(sink.sleeps) == 2
    assert 0.5 <= sink.sleeps[0] <= 1.0 and 1.0 <= sink.sleeps[1] <= 2.0


async def test_retry_after_server_error_then_success(tmp_path: Path, hook: Hook) -> None:
    sink = Sink(tmp_path)
    hook.statuses = [503, 500]
    out = await sink.run([Webhook(name="h", url=hook.url("/x"), max_attempts=3)])
    hooks = [(r.attempt, r.ok, r.status) for r in out if r.channel == "webhook:h"]
    assert hooks == [(1, False, 503), (2, False, 500), (3, True, 200)]
    assert len(hook.requests) == 3


async def test_slow_webhook_is_bounded_by_its_timeout(tmp_path: Path, hook: Hook) -> None:
    sink = Sink(tmp_path)
    hook.hang = True
    started = time.monotonic()
    out = await sink.run(
        [Webhook(name="slow", url=hook.url("/slow"), timeout_s=0.2, max_attempts=2)]
    )
    elapsed = time.monotonic() - started
    hook.release.set()
    assert elapsed < 2.0
    hooks = [r for r in out if r.channel == "webhook:slow"]
    assert [(r.attempt, r.ok) for r in hooks] == [(1, False), (2, False)]
    assert all("0.2 s" in r.error for r in hooks)
    assert sink.path.exists()


async def test_secrets_in_the_url_are_never_recorded(
    tmp_path: Path, dead_port: int, hook: Hook
) -> None:
    sink = Sink(tmp_path)
    dead = f"http://alice:hunter2@127.0.0.1:{dead_port}/hooks/T000/B000/SEKRETtoken?auth=tok999"
    hook.statuses = [401]
    live = hook.url("/notify/abcdef123456?token=tok777")
    await sink.run(
        [
            Webhook(name="dead", url=dead, max_attempts=1, timeout_s=1.0),
            Webhook(name="live", url=live, max_attempts=1),
        ]
    )
    logged = json.dumps([r.error for r in sink.records]) + sink.stderr.getvalue()
    assert "ConnectError" in logged and "HTTP 401" in logged
    for secret in ("hunter2", "alice", "SEKRETtoken", "tok999", "tok777", "abcdef123456"):
        assert secret not in logged


async def test_failing_file_writer_and_log_do_not_stop_webhooks(tmp_path: Path, hook: Hook) -> None:
    sink = Sink(tmp_path)

    def broken(alert: AlertRaised) -> Path:
        raise OSError("disk full")

    def broken_append(events: list[EventBase]) -> None:
        raise RuntimeError("log unavailable")

    async with httpx.AsyncClient() as client:
        out = await deliver(
            ALERT,
            write_file=broken,
            webhooks=[Webhook(name="h", url=hook.url("/x"))],
            client=client,
            append=broken_append,
            stderr=sink.stderr,
        )
    assert [(r.channel, r.ok) for r in out] == [("file", False), ("log", True), ("webhook:h", True)]
    assert "disk full" in out[0].error
    assert len(hook.requests) == 1


def test_backoff_doubles_and_caps() -> None:
    rng = random.Random(0)
    delays = [backoff_delay(n, 1.0, 5.0, rng) for n in range(1, 6)]
    ceilings = [1, 2, 4, 5, 5]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))


@pytest.mark.parametrize("server_up", [True, False])
async def test_outage_alert_reaches_file_log_and_webhook(
    tmp_path: Path, hook: Hook, dead_port: int, server_up: bool
) -> None:
    """From a hardware sample in the log to an alert file and a webhook, through the pipeline."""
    from swarmlog.escalation import pipeline
    from swarmlog.events import HardwareSampled, RunStarted
    from swarmlog.log import FileLog

    log = FileLog(tmp_path / "memory" / "events", sync="none")
    sink = Sink(tmp_path)
    url = hook.url("/ntfy-topic") if server_up else f"http://127.0.0.1:{dead_port}/x"
    hooks = [Webhook(name="phone", url=url, kind="ntfy", max_attempts=2, timeout_s=1.0)]
    log.append(
        [RunStarted(goal="g", run="outage"), HardwareSampled(ram_percent=99.0, run="outage")]
    )
    state, reader, alerts = pipeline.EMPTY, log.reader(), []
    while batch := reader.poll():
        for event in batch:
            state, out = pipeline.react(state, event)
            stored = log.append(out) if out else []
            alerts += [e for e in stored if isinstance(e, AlertRaised)]
    assert [(a.level, a.rule) for a in alerts] == [(3, "memory")]

    async with httpx.AsyncClient() as client:
        await deliver(
            alerts[0],
            write_file=sink.write_file,
            webhooks=hooks,
            client=client,
            append=log.append,
            stderr=sink.stderr,
            sleep=sink.sleep,
        )
    assert sink.path.exists()
    records = [e for e in log.read() if isinstance(e, AlertDelivered)]
    log.close()
    got = [(r.channel, r.attempt, r.ok) for r in records]
    if server_up:
        assert got == [("file", 1, True), ("log", 1, True), ("webhook:phone", 1, True)]
        assert len(hook.requests) == 1 and b"memory use" in hook.requests[0]["body"]
    else:
        assert got == [
            ("file", 1, True),
            ("log", 1, True),
            ("webhook:phone", 1, False),
            ("webhook:phone", 2, False),
        ]


def test_announce_prints_every_escalation_line(tmp_path: Path) -> None:
    from swarmlog.escalation.delivery import announce
    from swarmlog.events import EscalationRaised, Note, RunEnded

    err = io.StringIO()
    run_log = tmp_path / "run.log"
    raised = EscalationRaised(escalation_id="E1", level=1, rule="stuck_calls", reason="r", run="n")
    assert announce(raised, run_log=run_log, stderr=err) == (
        "ESCALATE level=1 rule=stuck_calls run=n seq=0 r"
    )
    assert announce(Note(text="x"), run_log=run_log, stderr=err) is None
    announce(RunEnded(outcome="aborted", run="n"), run_log=run_log, stderr=err)
    lines = run_log.read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["ESCALATE", "ABORT"]
    assert err.getvalue().splitlines() == lines
