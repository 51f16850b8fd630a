"""Crash audit: the supervisor's restart back-off is for a process that dies as it starts. A child
that ran well before it was killed starts again at once, however many deaths it had earlier in
the night; before, every death doubled its delay for good, so after six kills spread over a night
each later restart of that agent waited 30 s."""

from __future__ import annotations

import io
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from swarmlog.runtime import supervisor as sup
from swarmlog.workspace import Workspace


def _child(tmp_path: Path, name: str) -> sup.Child:
    child = sup.Child(name, [sys.executable, "-c", "import time; time.sleep(60)"])
    child.log_path = tmp_path / f"{name}.log"
    return child


def _supervisor(tmp_path: Path, out: io.StringIO) -> sup.Supervisor:
    """A supervisor on a fresh workspace, without monitor or renderer, that reports to ``out``."""
    return sup.Supervisor(
        Workspace(tmp_path / "ws"),
        goal="g",
        config={},
        include_monitor=False,
        include_renderer=False,
        out=out,
    )


def test_a_child_that_ran_well_restarts_at_once_and_one_dying_at_start_backs_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sup, "STABLE_S", 0.5, raising=False)
    out = io.StringIO()
    s = _supervisor(tmp_path, out)
    steady, flaky = _child(tmp_path, "builder"), _child(tmp_path, "scout")
    s.children = [steady, flaky]
    env = dict(os.environ)
    try:
        for child in s.children:
            child.restarts = 6  # six deaths earlier in the night
            child.start(env)
        time.sleep(0.8)  # the builder has run past STABLE_S; the scout is killed as it starts
        flaky.started_at = time.monotonic()
        for child in s.children:
            assert child.proc is not None
            os.kill(child.proc.pid, signal.SIGKILL)
            child.proc.wait(10)
        s._restart_dead(env)
        said = out.getvalue()
        assert "builder exited with -9; restarting in 0.5s" in said
        assert "scout exited with -9; restarting in 30.0s" in said
        deadline = time.monotonic() + 5
        while not steady.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
            s._restart_dead(env)
        assert steady.alive() and steady.restarts == 1
        assert not flaky.alive()
    finally:
        for child in s.children:
            child.stop(5)


def test_a_level_one_restart_of_a_frozen_agent_kills_it_after_the_grace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent frozen by SIGSTOP (or hung in a call) never acts on the SIGTERM of a level-1
    restart: the supervisor kills it once the grace is over and starts it again."""
    from swarmlog.events import DetectorFired, RunStarted

    monkeypatch.setattr(sup, "KILL_GRACE_S", 0.5, raising=False)
    out = io.StringIO()
    s = _supervisor(tmp_path, out)
    s.log.append([RunStarted(goal="g", run="r1")])
    s._announced = s.log.last_seq()  # as run() does when it has started its children
    child = _child(tmp_path, "builder")
    s.children = [child]
    env = dict(os.environ)
    try:
        child.start(env)
        assert child.proc is not None
        frozen = child.proc
        os.kill(frozen.pid, signal.SIGSTOP)
        (fired,) = s.log.append(
            [DetectorFired(detector="long_call", level=1, agent="builder", run="r1", message="m")]
        )
        s._recover(fired)
        assert child.stopping
        deadline = time.monotonic() + 8
        while child.proc is frozen and time.monotonic() < deadline:
            s._restart_dead(env)
            time.sleep(0.1)
        assert frozen.poll() == -signal.SIGKILL
        assert child.proc is not frozen and child.alive() and not child.stopping
        assert "builder did not stop within 0.5s; killing it" in out.getvalue()
    finally:
        child.stop(5)
