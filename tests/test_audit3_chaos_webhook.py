"""Crash audit: a monitor killed while it was still delivering an alert (after the alert file,
recorded first, and before the webhook's answer; with retries and back-off that is seconds to
minutes) must not lose the rest. The monitor that starts after it (a restart by the supervisor,
or ``run --resume``) writes the greppable line if no attempt of it is recorded and posts the alert
to every webhook the log does not show as finished, and only that: nothing is delivered twice.

A real ``swarmlog monitor`` process over a file log in tmp_path, and a webhook on loopback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from swarmlog.events import (
    AlertDelivered,
    AlertRaised,
    ConfigLoaded,
    RunEnded,
    RunStarted,
)
from swarmlog.log import FileLog
from tests.cli_helpers import Posted, recording_webhook

RUN = "night-hook"


@pytest.fixture
def hook() -> Iterator[tuple[str, list[Posted]]]:
    with recording_webhook() as (url, received):
        yield url, received


def _alert(alert_id: str) -> AlertRaised:
    return AlertRaised(
        alert_id=alert_id,
        level=3,
        rule="model_outage",
        title=f"{alert_id}: every model is down",
        run=RUN,
        actor="monitor",
    )


def test_a_webhook_the_dead_monitor_had_not_finished_is_posted_by_the_next_one(
    tmp_path: Path, hook: tuple[str, list[Posted]]
) -> None:
    url, received = hook
    ws = tmp_path / "ws"
    (ws / "memory").mkdir(parents=True)
    log = FileLog(ws / "memory" / "events", create=True)
    config = {"alerts": {"webhooks": [{"name": "phone", "url": url, "kind": "json"}]}}
    log.append([RunStarted(goal="g", run=RUN, actor="supervisor")])
    log.append([ConfigLoaded(config=config, run=RUN, actor="supervisor")])
    a1, a2, a3, a4 = _alert("A1"), _alert("A2"), _alert("A3"), _alert("A4")

    def delivered(alert_id: str, channel: str, ok: bool, attempt: int = 1) -> AlertDelivered:
        return AlertDelivered(
            alert_id=alert_id, channel=channel, ok=ok, attempt=attempt, run=RUN, actor="monitor"
        )

    log.append(
        [
            # A1: the earlier monitor died after the file and the line, before the webhook.
            a1,
            delivered("A1", "file", True),
            delivered("A1", "log", True),
            # A2: delivered everywhere; A3: the webhook gave up after its 3 attempts.
            a2,
            delivered("A2", "file", True),
            delivered("A2", "log", True),
            delivered("A2", "webhook:phone", True),
            a3,
            delivered("A3", "file", True),
            delivered("A3", "log", True),
            *(delivered("A3", "webhook:phone", False, n) for n in (1, 2, 3)),
            # A4: the earlier monitor died right after the file.
            a4,
            delivered("A4", "file", True),
        ]
    )
    monitor = subprocess.Popen(
        [sys.executable, "-m", "swarmlog", "--dir", str(ws), "monitor", "--interval", "60"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while len(received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # room for a wrong second post
        log.append([RunEnded(outcome="completed", run=RUN, actor="scheduler")])
        assert monitor.wait(15) == 0
    finally:
        if monitor.poll() is None:
            monitor.kill()
            monitor.wait()
    posted = sorted(json.loads(body)["alert_id"] for _, _, body in received)
    assert posted == ["A1", "A4"]
    records = [e for e in log.read() if isinstance(e, AlertDelivered)]
    hooks = [(r.alert_id, r.ok) for r in records if r.channel == "webhook:phone"]
    assert hooks[:4] == [("A2", True), ("A3", False), ("A3", False), ("A3", False)]
    assert sorted(hooks[4:]) == [("A1", True), ("A4", True)]
    # Nothing but what was left undone was delivered again.
    assert sorted((r.alert_id, r.channel) for r in records if r.channel != "webhook:phone") == [
        ("A1", "file"),
        ("A1", "log"),
        ("A2", "file"),
        ("A2", "log"),
        ("A3", "file"),
        ("A3", "log"),
        ("A4", "file"),
        ("A4", "log"),
    ]
    lines = (ws / "memory" / "logs" / "run.log").read_text().splitlines()
    assert len([line for line in lines if "A4:" in line]) == 1  # its line, once
    assert not [line for line in lines if "A1:" in line]  # recorded as written: not again
    assert not list(ws.glob("alerts/*.md"))  # the file was written before: not again
