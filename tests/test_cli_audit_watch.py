"""Audit #15: ``watch`` on a run whose supervisor is gone says so and stops counting.

The supervisor records its host and pid in ``run_started``; these tests point one at a real
process, then kill it, and run the real ``watch`` against the log.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from swarmlog.cli import main
from swarmlog.events import EventBase, Note, PhaseEntered, RunEnded, RunStarted
from swarmlog.log import FileLog
from swarmlog.watch import EMPTY_VIEW, fold_view, supervisor_gone, watch
from swarmlog.workspace import Workspace

HOST = os.uname().nodename


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def night(pid: int, started: float, *, host: str = HOST) -> list[EventBase]:
    return [
        RunStarted(goal="g", run="r1", host=host, pid=pid, ts=started),
        PhaseEntered(phase="execution", expected_s=600, run="r1", ts=started),
        Note(text="last sign of life", run="r1", ts=started + 30),
    ]


def workspace(tmp_path: Path, events: list[EventBase]) -> Workspace:
    assert main(["init", "--dir", str(tmp_path), "--no-detect"]) == 0
    log = FileLog(tmp_path / "memory" / "events")
    log.append(events)
    log.close()
    return Workspace(tmp_path)


def once(ws: Workspace, now: float) -> str:
    out = io.StringIO()
    assert watch(ws, once=True, out=out, is_tty=False, clock=lambda: now) == 0
    return out.getvalue()


def test_watch_says_the_supervisor_is_gone_and_stops_the_phase_clock(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
):
    started = time.time()
    ws = workspace(tmp_path, night(sleeper.pid, started))
    later = started + 600
    alive = once(ws, later)
    assert "STOPPED" not in alive and "phase=execution 10m 00s/10m 00s" in alive
    sleeper.kill()
    sleeper.wait()
    dead = once(ws, later)
    assert "phase=execution 30s/10m 00s" in dead  # stopped at the last event, not at now
    assert f"STOPPED: supervisor pid {sleeper.pid} on {HOST} is gone" in dead
    assert "the run stopped at seq 3" in dead and "9m 30s ago" in dead
    assert "'swarmlog run --resume'" in dead
    out = io.StringIO()
    assert watch(ws, once=True, out=out, is_tty=True, clock=lambda: later) == 0
    screen = out.getvalue()
    assert f"supervisor pid {sleeper.pid} on {HOST} is gone" in screen
    assert "phase execution: 30s of expected 10m 00s" in screen


def test_watch_json_reports_the_gone_supervisor(tmp_path: Path, sleeper: subprocess.Popen[bytes]):
    ws = workspace(tmp_path, night(sleeper.pid, time.time()))
    sleeper.kill()
    sleeper.wait()
    proc = subprocess.run(
        [sys.executable, "-m", "swarmlog", "watch", "--once", "--json", "--dir", str(ws.root)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert row["supervisor_gone"] == f"supervisor pid {sleeper.pid} on {HOST} is gone"
    assert row["phase"]["elapsed_s"] == 30.0


def test_a_reused_pid_is_not_the_supervisor(tmp_path: Path):
    """Our own pid, in a run_started written before this process began: the pid was reused."""
    view = fold_view(EMPTY_VIEW, night(os.getpid(), time.time() - 3600))
    assert supervisor_gone(view) == f"supervisor pid {os.getpid()} on {HOST} is gone"
    assert supervisor_gone(fold_view(EMPTY_VIEW, night(os.getpid(), time.time()))) == ""


def test_nothing_is_claimed_without_a_pid_on_this_host_or_after_the_end(
    sleeper: subprocess.Popen[bytes],
):
    started = time.time()
    sleeper.kill()
    sleeper.wait()
    assert supervisor_gone(fold_view(EMPTY_VIEW, night(sleeper.pid, started))) != ""
    other = fold_view(EMPTY_VIEW, night(sleeper.pid, started, host="elsewhere"))
    assert supervisor_gone(other) == ""
    assert supervisor_gone(fold_view(EMPTY_VIEW, night(0, started))) == ""
    ended = [*night(sleeper.pid, started), RunEnded(outcome="completed", run="r1", ts=started + 40)]
    assert supervisor_gone(fold_view(EMPTY_VIEW, ended)) == ""


def test_a_resumed_run_is_judged_by_its_new_supervisor(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
):
    started = time.time()
    events = [
        *night(999_999_999, started - 100),  # the first supervisor: long gone
        RunStarted(goal="g", run="r1", resumed=True, host=HOST, pid=sleeper.pid, ts=started),
    ]
    assert supervisor_gone(fold_view(EMPTY_VIEW, events)) == ""
