"""The children's logs under memory/logs are rotated at a run's start once past a size, so a
workspace that runs night after night keeps at most two files' worth per process."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmlog.runtime import supervisor as sup
from swarmlog.workspace import Workspace


def test_a_childs_log_past_the_limit_moves_aside_at_a_runs_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sup, "LOG_ROTATE_BYTES", 100)
    ws = Workspace(tmp_path)
    logs = ws.memory / "logs"
    logs.mkdir(parents=True)
    (logs / "scheduler.log").write_text("old night\n" * 20)  # past the limit
    (logs / "scheduler.log.1").write_text("older night\n")
    (logs / "builder.log").write_text("short\n")  # under it
    s = sup.Supervisor(ws, goal="g", config={}, include_monitor=False, include_renderer=False)
    children = s.plan_children()
    assert {c.name for c in children} >= {"scheduler", "builder"}
    assert not (logs / "scheduler.log").exists()
    assert (logs / "scheduler.log.1").read_text() == "old night\n" * 20
    assert (logs / "builder.log").read_text() == "short\n"
    assert not (logs / "builder.log.1").exists()


def test_level_one_restarts_answer_only_firings_after_the_supervisor_started(
    tmp_path: Path,
) -> None:
    """A new or resumed supervisor reads the log from the start; an earlier run's level-1
    firings must not restart the agents it has just started."""
    import subprocess
    import sys

    from swarmlog.events import AgentStatusChanged, DetectorFired, RunStarted

    ws = Workspace(tmp_path)
    s = sup.Supervisor(ws, goal="g", config={}, include_monitor=False, include_renderer=False)
    old = DetectorFired(detector="stuck_calls", level=1, agent="builder", run="r1", message="m")
    s.log.append([RunStarted(goal="g", run="r1"), old])
    s._announced = s.log.last_seq()  # as run() does when it starts
    child = sup.Child("builder", [])
    child.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    s.children = [child]
    try:
        (stored_old,) = [e for e in s.log.read() if isinstance(e, DetectorFired)]
        s._recover(stored_old)
        assert child.alive() and not child.stopping
        (new,) = s.log.append([old])
        s._recover(new)
        assert child.stopping
        assert child.proc.wait(10) is not None  # terminated, to be restarted
        restarts = [e for e in s.log.read() if isinstance(e, AgentStatusChanged)]
        assert [e.status for e in restarts] == ["restarted"]
    finally:
        if child.proc.poll() is None:
            child.proc.kill()


def test_resume_keeps_an_operators_pause_and_names_itself_when_it_releases_a_hold(
    tmp_path: Path,
) -> None:
    from swarmlog.escalation import levels
    from swarmlog.events import AlertRaised, EscalationRaised, HumanCommand, RunStarted
    from swarmlog.log import FileLog
    from swarmlog.state import escalations

    def resumed(*events: object) -> list[object]:
        ws = Workspace(tmp_path / str(len(list(tmp_path.iterdir()))))
        s = sup.Supervisor(
            ws, goal="", config={}, resume=True, include_monitor=False, include_renderer=False
        )
        s.log.append([RunStarted(goal="g", run="r1", actor="supervisor"), *events])  # type: ignore[list-item]
        before = s.log.last_seq()
        s.start_run()
        after = list(s.log.read(after=before))
        assert levels.team_directive(levels.project(s.log.read())) != "waiting_for_human"
        return after

    paused = resumed(HumanCommand(command="pause", run="r1", actor="human"))
    assert not [e for e in paused if isinstance(e, HumanCommand)]  # still paused
    waiting = resumed(
        EscalationRaised(escalation_id="E1", level=3, rule="model_outage", run="r1"),
        AlertRaised(alert_id="A1", level=3, rule="model_outage", title="t", escalation_id="E1"),
    )
    (cmd,) = [e for e in waiting if isinstance(e, HumanCommand)]
    assert (cmd.command, cmd.actor) == ("resume", "supervisor")
    # The hold is released, but no human has acknowledged the alert.
    log = FileLog(tmp_path / "1" / "memory" / "events")
    a1 = escalations.project(log.read()).alerts["A1"]
    assert (a1.status, a1.closed_by) == ("resolved", "supervisor")
