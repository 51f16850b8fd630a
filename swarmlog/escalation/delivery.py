"""Deliver an alert to the human: the alert file first, then the log line, then webhooks.

The order is the guarantee: the alert file is written (and recorded as ``alert_delivered`` with
channel ``file``) before anything that can hang or fail on the network is tried, so a dead or slow
webhook can delay only its own delivery, never lose the alert. Every webhook attempt is recorded,
ok or not, with secrets in the URL redacted. Nothing raised by a channel escapes ``deliver``; each
webhook is bounded by its ``timeout_s`` per attempt and ``max_attempts`` in all. The runtime runs
``deliver`` as a background task so the team never waits for it.
"""

from __future__ import annotations

import asyncio
import base64
import random
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import httpx

from swarmlog.escalation.levels import alert_line
from swarmlog.escalation.settings import Webhook, redact_text, redact_url
from swarmlog.events import AlertDelivered, AlertRaised, EventBase

__all__ = ["announce", "backoff_delay", "deliver", "webhook_request"]

_NTFY_PRIORITY = {1: "2", 2: "3", 3: "4", 4: "5"}  # min, low, default, high, max(urgent)
_ERROR_WIDTH = 300


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Return the wait before retry number ``attempt`` (1-based): doubling, capped, jittered."""
    ceiling = min(max_s, base_s * 2.0 ** (attempt - 1))
    return ceiling * (0.5 + rng.random() / 2)


def _header(text: str) -> str:
    """Return a header value: ASCII as is, else RFC 2047 encoded (ntfy decodes it)."""
    text = " ".join(text.split())
    if text.isascii():
        return text
    return f"=?UTF-8?B?{base64.b64encode(text.encode()).decode()}?="


def _body_text(alert: AlertRaised) -> str:
    lines = [alert.summary or alert.title]
    if alert.actions:
        lines += ["", "What the team did:", *(f"- {a}" for a in alert.actions)]
    if alert.advice:
        lines += ["", "What to do:", *(f"- {a}" for a in alert.advice)]
    lines += ["", f"run {alert.run} · alert {alert.alert_id} · seq {alert.seq}"]
    return "\n".join(lines)


def webhook_request(alert: AlertRaised, hook: Webhook) -> dict[str, Any]:
    """Return the ``httpx`` request arguments (``content`` or ``json``, ``headers``) for a hook."""
    line = alert_line(alert) or alert.title
    if hook.kind == "ntfy":
        tags = "rotating_light" if alert.level >= 3 else "warning"
        return {
            "content": _body_text(alert).encode(),
            "headers": {
                "Title": _header(line),
                "Priority": _NTFY_PRIORITY.get(alert.level, "3"),
                "Tags": f"{tags},level{alert.level}",
                "Content-Type": "text/plain; charset=utf-8",
            },
        }
    if hook.kind == "slack":
        return {"json": {"text": f"*{line}*\n{_body_text(alert)}"}}
    return {
        "json": {
            "alert_id": alert.alert_id,
            "level": alert.level,
            "rule": alert.rule,
            "title": alert.title,
            "summary": alert.summary,
            "run": alert.run,
            "seq": alert.seq,
            "ts": alert.ts,
            "escalation_id": alert.escalation_id,
            "evidence": list(alert.evidence),
            "actions": list(alert.actions),
            "advice": list(alert.advice),
            "line": line,
        }
    }


def announce(
    event: EventBase, *, run_log: Path | None = None, stderr: TextIO | None = None
) -> str | None:
    """Print an escalation's greppable line (EMERGENCY/ESCALATE/ABORT) to stderr and the run log.

    Returns the line, or None for events that have none. The runtime calls this for every
    ``escalation_raised`` and an aborted ``run_ended``; ``deliver`` calls it for each alert.
    """
    line = alert_line(event)
    if line is None:
        return None
    print(line, file=stderr or sys.stderr, flush=True)
    if run_log is not None:
        run_log.parent.mkdir(parents=True, exist_ok=True)
        with run_log.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    return line


async def deliver(
    alert: AlertRaised,
    *,
    write_file: Callable[[AlertRaised], Path] | None,
    webhooks: Sequence[Webhook],
    line: bool = True,
    client: httpx.AsyncClient,
    append: Callable[[list[EventBase]], object],
    run_log: Path | None = None,
    stderr: TextIO | None = None,
    rng: random.Random | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    backoff_s: float = 1.0,
    backoff_max_s: float = 30.0,
) -> list[AlertDelivered]:
    """Deliver one alert to every channel, recording each attempt; never raises for a channel.

    Args:
        alert: the alert as stored in the log (with its seq).
        write_file: renders and writes ``alerts/ALERT-<time>-<seq>.md``; returns its path. None
            when the file was already delivered (a monitor finishing what a killed one began).
        webhooks: the configured hooks; only those with ``min_level <= alert.level`` are used.
        line: whether to write the greppable line (False when it was already written).
        client: the HTTP client (tests pass one bound to a loopback server).
        append: appends ``alert_delivered`` events to the log.
        run_log: the run's log file; the greppable line is appended to it.
        stderr: where the greppable line is printed (default ``sys.stderr``).
        rng: seeded jitter for the back-off; sleep: awaited between retries.
    """
    records: list[AlertDelivered] = []

    def record(channel: str, ok: bool, attempt: int = 1, status: int = 0, error: str = "") -> None:
        rec = AlertDelivered(
            alert_id=alert.alert_id,
            channel=channel,
            ok=ok,
            attempt=attempt,
            status=status,
            error=error[:_ERROR_WIDTH],
            run=alert.run,
            actor="monitor",
        )
        records.append(rec)
        try:
            append([rec])
        except Exception as exc:  # the log failing must not stop delivery to the human
            print(f"swarmlog: cannot record delivery of {alert.alert_id}: {exc}", file=sys.stderr)

    # 1. The file, before anything that can hang.
    if write_file is not None:
        try:
            write_file(alert)
            record("file", True)
        except Exception as exc:
            record("file", False, error=f"{type(exc).__name__}: {exc}")

    # 2. The greppable line: stderr and the run's log file.
    if line:
        try:
            announce(alert, run_log=run_log, stderr=stderr)
            record("log", True)
        except Exception as exc:
            record("log", False, error=f"{type(exc).__name__}: {exc}")

    # 3. Webhooks, concurrently, each bounded.
    rng = rng or random.Random(alert.seq)
    hooks = [h for h in webhooks if h.min_level <= alert.level]
    await asyncio.gather(
        *(_post(alert, h, client, record, rng, sleep, backoff_s, backoff_max_s) for h in hooks)
    )
    return records


async def _post(
    alert: AlertRaised,
    hook: Webhook,
    client: httpx.AsyncClient,
    record: Callable[..., None],
    rng: random.Random,
    sleep: Callable[[float], Awaitable[None]],
    backoff_s: float,
    backoff_max_s: float,
) -> None:
    channel = f"webhook:{hook.name}"
    request = webhook_request(alert, hook)
    for attempt in range(1, hook.max_attempts + 1):
        status, error = 0, ""
        try:
            async with asyncio.timeout(hook.timeout_s):
                resp = await client.post(hook.url, timeout=httpx.Timeout(hook.timeout_s), **request)
            status = resp.status_code
            if resp.is_success:
                record(channel, True, attempt, status)
                return
            error = f"HTTP {status} from {redact_url(hook.url)}"
        except TimeoutError:
            error = f"timed out after {hook.timeout_s:g} s posting to {redact_url(hook.url)}"
        except httpx.TimeoutException as exc:
            where = redact_url(hook.url)
            error = f"{type(exc).__name__} after {hook.timeout_s:g} s posting to {where}"
        except Exception as exc:
            error = redact_text(f"{type(exc).__name__}: {exc} ({hook.url})", hook.url)
        record(channel, False, attempt, status, error)
        if attempt < hook.max_attempts:
            await sleep(backoff_delay(attempt, backoff_s, backoff_max_s, rng))
