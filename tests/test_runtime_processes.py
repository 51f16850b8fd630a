"""``swarmlog run`` as a user runs it: real processes, real simulated servers on loopback.

Each test is one simulated night (tens of seconds on two cores), so there are few of them and
each checks a lot: the demo end to end and reproducible, a crash of every kind of process followed
by ``--resume``, and an outage whose alert reaches a webhook while a dead webhook loses nothing.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from swarmlog.events import (
    AgentRegistered,
    AlertDelivered,
    AlertRaised,
    CircuitOpened,
    Event,
    Note,
    RunEnded,
    TaskCompleted,
    TaskRouted,
    TaskSubmitted,
)
from swarmlog.log import FileLog
from tests.cli_helpers import Posted, recording_webhook, start_night

pytestmark = pytest.mark.slow

RUN_TIMEOUT = 240


def _swarmlog(
    ws: Path, *args: str, timeout: float = RUN_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "swarmlog", "--dir", str(ws), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _events(ws: Path) -> list[Event]:
    return list(FileLog(ws / "memory" / "events", create=False).read())


def _of(events: list[Event], kind: type) -> list[object]:
    return [e for e in events if isinstance(e, kind)]


@pytest.mark.timeout(RUN_TIMEOUT)
def test_demo_night_end_to_end_replays_and_rerenders_byte_for_byte(tmp_path: Path) -> None:
    ws = tmp_path / "night"
    done = _swarmlog(ws, "run", "--sim", "demo")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "run completed" in done.stdout
    events = _events(ws)
    assert [e.outcome for e in _of(events, RunEnded)] == ["completed"]  # type: ignore[attr-defined]
    submitted = {e.task_id for e in _of(events, TaskSubmitted)}  # type: ignore[attr-defined]
    completed = [e.task_id for e in _of(events, TaskCompleted)]  # type: ignore[attr-defined]
    assert sorted(completed) == sorted(submitted)  # every task, exactly once
    # Seven agents, each its own process.
    pids = {e.agent: e.pid for e in _of(events, AgentRegistered)}  # type: ignore[attr-defined]
    assert len(pids) == 7 and len(set(pids.values())) == 7

    verified = _swarmlog(ws, "replay", "--verify", timeout=60)
    assert verified.returncode == 0, verified.stdout + verified.stderr

    rendered = {p: p.read_bytes() for p in (ws / "memory").glob("*.md")}
    assert {p.name for p in rendered} >= {"team-state.md", "report.md", "decisions.md"}
    for path in rendered:
        path.unlink()
    for snap in (ws / "memory" / "snapshots").glob("*"):
        snap.unlink()
    again = _swarmlog(ws, "render", timeout=60)
    assert again.returncode == 0, again.stderr
    assert {p: p.read_bytes() for p in (ws / "memory").glob("*.md")} == rendered


def _leftovers(ws: Path) -> list[str]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(ws) in cmdline and "swarmlog" in cmdline:
            found.append(cmdline)
    return found


def _children(proc: subprocess.Popen[str]) -> list[psutil.Process]:
    try:
        return psutil.Process(proc.pid).children()
    except psutil.NoSuchProcess:
        return []


@pytest.mark.timeout(RUN_TIMEOUT)
def test_kill_minus_nine_anything_then_resume_completes_every_task_once(tmp_path: Path) -> None:
    ws = tmp_path / "crashy"
    rng = random.Random(7)
    log_dir = ws / "memory" / "events"
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "swarmlog", "--dir", str(ws), "run", "--sim", "demo"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        # Wait until the team is working, then SIGKILL a few children at random moments.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if log_dir.is_dir() and len(_of(_events(ws), TaskRouted)) >= 3:
                break
            time.sleep(0.2)
        killed = []
        for _ in range(3):
            victims = [p for p in _children(supervisor) if "swarmlog" in " ".join(p.cmdline())]
            if not victims:
                break
            victim = rng.choice(victims)
            killed.append(" ".join(victim.cmdline()[-2:]))
            victim.send_signal(signal.SIGKILL)
            time.sleep(rng.uniform(0.3, 1.5))
        assert killed, "no child process was found to kill"
        # Then the supervisor itself, mid-run: its children notice and stop.
        supervisor.send_signal(signal.SIGKILL)
        supervisor.wait(10)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
    before = _events(ws)
    assert not _of(before, RunEnded), "the run ended before the crash; nothing was tested"
    # Every child notices its supervisor is gone (they check every 0.5 s) and stops.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _leftovers(ws):
        time.sleep(0.2)
    assert _leftovers(ws) == []

    resumed = _swarmlog(ws, "run", "--resume")  # the log says the run was on --sim demo
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert "the open run was started with --sim demo" in resumed.stdout
    events = _events(ws)
    assert [e.outcome for e in _of(events, RunEnded)] == ["completed"]  # type: ignore[attr-defined]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))  # dense, nothing lost
    assert events[: len(before)] == before  # nothing acknowledged before the crash changed
    submitted = {e.task_id for e in _of(events, TaskSubmitted)}  # type: ignore[attr-defined]
    completed = [e.task_id for e in _of(events, TaskCompleted)]  # type: ignore[attr-defined]
    assert sorted(completed) == sorted(submitted)  # exactly once, despite the kills
    verified = _swarmlog(ws, "verify", timeout=60)
    assert verified.returncode == 0, verified.stdout


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[Posted]]]:
    with recording_webhook() as (url, received):
        yield url, received


def _dead_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: nothing listens there


@pytest.mark.timeout(RUN_TIMEOUT)
def test_outage_opens_the_circuit_and_the_alert_reaches_the_human(
    tmp_path: Path, webhook: tuple[str, list[Posted]]
) -> None:
    url, received = webhook
    ws = tmp_path / "outage"
    ws.mkdir()
    (ws / "swarmlog.toml").write_text(
        f"""
[[alerts.webhooks]]
name = "phone"
url = "{url}"
kind = "ntfy"

[[alerts.webhooks]]
name = "dead"
url = "http://127.0.0.1:{_dead_port()}/hook"
max_attempts = 2
timeout_s = 1
"""
    )
    run = subprocess.Popen(
        [sys.executable, "-m", "swarmlog", "--dir", str(ws), "run", "--sim", "outage"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and not list((ws / "alerts").glob("ALERT-*.md")):
            assert run.poll() is None, "the run ended without an alert"
            time.sleep(0.2)
        alert_files = list((ws / "alerts").glob("ALERT-*.md"))
        assert alert_files, "no alert file appeared"
        # The human answers: the team was waiting at level 3.
        resumed = _swarmlog(ws, "resume", timeout=60)
        assert resumed.returncode == 0, resumed.stderr
        out, err = run.communicate(timeout=150)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, out[-2000:] + err[-2000:]
    events = _events(ws)
    opened = [e for e in _of(events, CircuitOpened) if e.scope == "model"]  # type: ignore[attr-defined]
    assert {e.target for e in opened} == {"deep"}  # type: ignore[attr-defined]
    alerts = [a for a in _of(events, AlertRaised) if a.rule == "model_outage"]  # type: ignore[attr-defined]
    assert len(alerts) == 1 and alerts[0].level == 3  # type: ignore[attr-defined]
    text = alert_files[0].read_text()
    assert "model_outage" in text and "swarmlog ack" in text
    # The live webhook got the ntfy payload; every attempt on the dead one is in the log.
    assert any(b"deep" in body for _path, _headers, body in received)
    deliveries = _of(events, AlertDelivered)
    by_channel: dict[str, list[bool]] = {}
    for d in deliveries:
        by_channel.setdefault(d.channel, []).append(d.ok)  # type: ignore[attr-defined]
    assert by_channel["file"][0] is True
    assert by_channel["webhook:phone"][-1] is True
    assert by_channel["webhook:dead"] == [False, False]
    # The greppable line reached stderr.
    assert "EMERGENCY level=3 rule=model_outage" in err
    assert [e.outcome for e in _of(events, RunEnded)] == ["completed"]  # type: ignore[attr-defined]


@pytest.mark.timeout(RUN_TIMEOUT)
def test_a_second_supervisor_is_refused_and_ctrl_c_stops_the_night_with_130(
    tmp_path: Path,
) -> None:
    ws = tmp_path / "interrupted"
    supervisor = start_night(ws)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if (ws / "memory" / "events").is_dir() and _of(_events(ws), TaskRouted):
                break
            time.sleep(0.2)
        # A second supervisor on the same workspace would start a second team: refused.
        second = _swarmlog(ws, "run", "--resume", timeout=60)
        assert second.returncode == 1, second.stdout + second.stderr
        assert f"another 'swarmlog run' (pid {supervisor.pid} on " in second.stderr
        supervisor.send_signal(signal.SIGINT)
        out, err = supervisor.communicate(timeout=60)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
    assert supervisor.returncode == 130, out[-2000:] + err[-2000:]
    assert "run interrupted by SIGINT; continue it with 'swarmlog run --resume'" in out
    events = _events(ws)
    assert not _of(events, RunEnded)
    notes = [e.text for e in events if isinstance(e, Note) and e.actor == "supervisor"]
    assert any("swarmlog run --resume" in text for text in notes)
    assert _leftovers(ws) == []  # every child stopped with it
    assert _swarmlog(ws, "verify", timeout=60).returncode == 0
