"""Nothing of a run stays open once it is handled or over (audit B).

- A level-1 escalation whose recovery worked (its agent completed a task: the detectors forget the
  agent's error streak and calls at that moment) is resolved by the monitor while the run goes on.
- A run's ``run_ended`` closes every escalation still open ("ended with the run"), releases the
  phase and run circuits, clears the blockers (a model's circuit too) and the pause, in the rule
  every fold shares (``swarmlog.state.escalations``): the monitor's, the breakers' and the views'.
- Records of the run stored after its end (a monitor's last reactions) open nothing again, and
  the detectors fire nothing more, until the next ``run_started``.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from swarmlog.escalation import breakers, detectors, levels
from swarmlog.escalation.pipeline import project as monitor_fold
from swarmlog.events import (
    AgentRegistered,
    CircuitClosed,
    CircuitOpened,
    DetectorFired,
    EscalationRaised,
    EscalationResolved,
    Event,
    EventBase,
    HumanCommand,
    PhaseEntered,
    RunEnded,
    RunStarted,
    TaskClaimed,
    TaskCompleted,
    TaskFailed,
    TaskRouted,
    TaskSubmitted,
)
from swarmlog.log import FileLog
from swarmlog.replay import load_check_modules, verify
from swarmlog.runtime.monitor import Monitor
from swarmlog.state import escalations, project
from swarmlog.workspace import Workspace
from tests.cli_helpers import run

ERROR = "cannot connect to sim endpoint (model qwen2.5:32b): All connection attempts failed"


class Night:
    """A workspace's log, the events the team appends, and the real monitor reacting to them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ws = Workspace(root)
        self.log = FileLog(self.ws.events)
        self.monitor = Monitor(self.ws, self.log, sample=False)
        self.run = "r1"

    def add(self, *events: EventBase) -> None:
        for event in events:
            if isinstance(event, RunStarted) and event.run:
                self.run = event.run
            stamped = event if event.run else msgspec.structs.replace(event, run=self.run)
            self.log.append([stamped])
            self.monitor.step()

    def events(self) -> list[Event]:
        return list(self.log.read(0))

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [e for e in self.events() if isinstance(e, kind)]

    def fail(self, agent: str, times: int) -> None:
        for n in range(times):
            self.add(TaskFailed(task_id=f"t-{agent}-{n}", agent=agent, error=ERROR))

    def markdown(self) -> tuple[str, str]:
        assert run(self.root, "render") == 0
        memory = self.root / "memory"
        return (memory / "team-state.md").read_text(), (memory / "report.md").read_text()


def _start(night: Night) -> None:
    night.add(
        RunStarted(goal="g"),
        AgentRegistered(agent="builder", role="builder", pid=1),
        AgentRegistered(agent="scout", role="scout", pid=2),
        PhaseEntered(phase="execution", iteration=0, expected_s=3600.0),
        TaskSubmitted(task_id="w-auth", title="auth", role="builder"),
        TaskRouted(task_id="w-auth", model="deep"),
    )


def test_a_level_one_escalation_whose_recovery_worked_is_resolved(tmp_path: Path) -> None:
    night = Night(tmp_path)
    _start(night)
    night.fail("builder", 3)
    night.fail("scout", 3)
    (b, s) = night.of(EscalationRaised)
    assert (b.agent, b.level, s.agent, s.level) == ("builder", 1, "scout", 1)
    # the builder, restarted, completes work: its escalation closes; the scout's stays open
    night.add(TaskClaimed(task_id="w-auth", agent="builder", lease_until=1e12))
    night.add(TaskCompleted(task_id="w-auth", agent="builder"))
    (resolved,) = night.of(EscalationResolved)
    assert (resolved.escalation_id, resolved.by) == (b.escalation_id, "monitor")
    assert resolved.resolution == "recovered: builder completed task w-auth"
    state = project(night.events())
    assert set(state.alerts.open) == {s.escalation_id} and state.alerts.level == 1
    assert list(state.team.blockers) == [f"escalation:{s.escalation_id}"]
    assert set(levels.project(night.events()).open) == {s.escalation_id}
    team_state, report = night.markdown()
    assert "builder completed task w-auth" in report
    assert team_state.count("Escalation level 1") == 2  # the level line and the scout's blocker
    # a completion re-folded (a restarted monitor) resolves nothing twice
    Monitor(night.ws, night.log, sample=False).step()
    assert len(night.of(EscalationResolved)) == 1


def test_a_failed_recovery_still_escalates(tmp_path: Path) -> None:
    """No completion between the firings: the level-1 escalation rises to 2 as before."""
    night = Night(tmp_path)
    _start(night)
    night.fail("builder", 9)
    raised = night.of(EscalationRaised)
    assert [(e.escalation_id, e.level) for e in raised] == [("E1", 1), ("E1", 2)]
    assert night.of(EscalationResolved) == []


def test_the_runs_end_closes_everything_of_it(tmp_path: Path) -> None:
    night = Night(tmp_path)
    _start(night)
    night.fail("builder", 3)  # E1, level 1: never recovered
    night.add(
        CircuitOpened(target="deep", scope="model", reason="5 of the last 9 calls failed"),
        DetectorFired(detector="critical_bugs", level=2, message="bugs", agent="inspector"),
        EscalationRaised(escalation_id="E9", level=3, rule="budget_cost", reason="over budget"),
        HumanCommand(command="pause", text="lunch"),
    )
    before = project(night.events())
    assert before.team.paused and before.alerts.level == 3
    assert {k.split(":")[0] + ":" + k.split(":")[1] for k in before.team.blockers} >= {
        "circuit:deep",
        "circuit:phase",
        "circuit:run",
        "escalation:E1",
        "human:pause",
    }
    night.add(RunEnded(outcome="completed"))
    events = night.events()
    state = project(events)
    assert state.alerts.open == {} and state.alerts.level == 0 and state.team.blockers == {}
    assert not state.team.paused
    ended = {c.escalation_id: c.resolution for c in state.alerts.closed}
    assert ended["E9"] == ended["E1"] == escalations.ENDED
    esc = levels.project(events)
    assert esc.open == {} and esc.ended and levels.team_directive(esc) == "run"
    assert breakers.project(events).circuits == {}
    assert monitor_fold(events).breakers.circuits == {}
    team_state, report = night.markdown()
    assert "Escalation level" not in team_state and "Circuit open" not in team_state
    assert "**open**" not in report and "ended with the run" in report
    load_check_modules()
    assert verify(night.log.read(0)) == []


def test_records_after_the_end_open_nothing_until_the_next_run(tmp_path: Path) -> None:
    night = Night(tmp_path)
    _start(night)
    night.add(RunEnded(outcome="completed"))
    stored = len(night.events())
    # the monitor's reactions to what came before the end, stored after it
    night.add(
        EscalationRaised(escalation_id="E1", level=3, rule="budget_wall", reason="late"),
        CircuitOpened(target="r1", scope="run", reason="late"),
        CircuitOpened(target="deep", scope="model", reason="late"),
    )
    night.fail("builder", 3)  # nothing fires after the end
    late = night.events()[stored:]
    assert not [e for e in late if isinstance(e, DetectorFired | EscalationResolved)]
    assert [e.escalation_id for e in late if isinstance(e, EscalationRaised)] == ["E1"]
    state = project(night.events())
    assert state.alerts.open == {} and state.team.blockers == {} and state.alerts.level == 0
    _, fired = detectors.observe_all(night.events())
    assert [f.run for f in fired] == []
    # the next night starts afresh: its firings escalate again
    night.add(RunStarted(goal="g", run="r2"))
    night.fail("builder", 3)
    raised = [e for e in night.of(EscalationRaised) if e.run == "r2"]
    assert [(e.escalation_id, e.level) for e in raised] == [("E2", 1)]
    assert set(project(night.events()).alerts.open) == {"E2"}


def test_another_runs_circuit_closed_releases_nothing_here() -> None:
    """Found by test_human_views_agree's Hypothesis search: the view followed another run's
    circuit_closed while the breakers kept the phase halted."""
    events = [
        msgspec.structs.replace(e, seq=n, ts=1000.0 + n)
        for n, e in enumerate(
            [
                RunStarted(goal="g", run="r1"),
                CircuitOpened(scope="phase", target="execution", run="r1"),
                CircuitClosed(scope="phase", target="execution", run="r0"),
            ],
            1,
        )
    ]
    assert set(breakers.project(events).circuits) == {"phase:execution"}
    assert set(project(events).team.blockers) == {"circuit:phase:execution"}
