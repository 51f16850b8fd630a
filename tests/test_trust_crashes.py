"""A lease lost to a crash is not the agent timing out (audit: a killed builder lost trust).

The scheduler (the runtime's trust fold, ``swarmlog.team.trust``) times out a lease that ran out;
the task is retried either way. Trust drops only for a genuine timeout: the agent process alive and
registered from its claim to the timeout. When the agent registered again after its claim (its
process was killed and the supervisor restarted it) or the whole team came back up (a new or
resumed ``run_started``), the timeout is a crash. The rendered state shows only what the log's
``trust_changed`` events say, so every view agrees with the scheduler.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from swarmlog.events import (
    AgentRegistered,
    Event,
    EventBase,
    RunStarted,
    TaskClaimed,
    TaskRouted,
    TaskSubmitted,
    TaskTimedOut,
    TrustChanged,
)
from swarmlog.log import FileLog
from swarmlog.replay import load_check_modules, verify
from swarmlog.runtime.scheduler import Scheduler
from swarmlog.state import project
from swarmlog.team import trust
from swarmlog.workspace import Workspace

T0 = 1_795_000_000.0


class Night:
    """A workspace's log and the real scheduler driving it, on a clock the test moves."""

    def __init__(self, root: Path) -> None:
        self.log = FileLog(Workspace(root).events)
        self.now = T0
        self.scheduler = Scheduler(self.log, clock=lambda: self.now)

    def add(self, *events: EventBase) -> None:
        self.log.append([e if e.run else _stamped(e) for e in events])

    def claim(self, task: str, agent: str = "builder", lease_s: float = 10.0) -> None:
        self.add(
            TaskSubmitted(task_id=task, title=task, role=agent),
            TaskRouted(task_id=task, model="deep"),
            TaskClaimed(task_id=task, agent=agent, lease_until=self.now + lease_s, attempt=1),
        )

    def expire(self) -> None:
        """Let every lease run out and let the scheduler decide (twice: it appends what it
        derived from its own timeouts on the next step)."""
        self.scheduler.step()
        self.now += 60.0
        self.scheduler.step()
        self.scheduler.step()

    def events(self) -> list[Event]:
        return list(self.log.read(0))

    def timeouts(self) -> list[TaskTimedOut]:
        return [e for e in self.events() if isinstance(e, TaskTimedOut)]

    def changes(self) -> list[TrustChanged]:
        return [e for e in self.events() if isinstance(e, TrustChanged)]


def _stamped(event: EventBase) -> EventBase:
    return msgspec.structs.replace(event, run="r1")


def _start(night: Night, agent: str = "builder") -> None:
    night.add(RunStarted(goal="g"), AgentRegistered(agent=agent, role=agent, pid=1))


def test_a_genuine_timeout_still_costs_trust(tmp_path: Path) -> None:
    night = Night(tmp_path)
    _start(night)
    night.claim("w-auth")
    night.expire()
    (timeout,) = night.timeouts()
    (change,) = night.changes()
    assert (change.agent, change.old, change.new) == ("builder", 7.0, 6.0)
    assert change.evidence_seq == timeout.seq and "w-auth timed out" in change.reason
    state = project(night.events())
    assert state.team.agents["builder"].trust == 6.0 and len(state.trust.changes) == 1


def test_a_killed_agent_that_registered_again_keeps_its_trust(tmp_path: Path) -> None:
    night = Night(tmp_path)
    _start(night)
    night.claim("w-auth")
    # kill -9 of the builder: the supervisor starts it again and it registers anew
    night.add(AgentRegistered(agent="builder", role="builder", pid=2))
    night.expire()
    (timeout,) = night.timeouts()  # the lease still runs out and the task is retried
    assert timeout.task_id == "w-auth" and timeout.agent == "builder"
    assert night.changes() == []
    state = project(night.events())
    assert state.trust.changes == () and state.team.agents["builder"].trust == 7.0
    load_check_modules()
    assert verify(night.log.read(0)) == []


def test_a_team_brought_back_up_is_no_timeout_of_the_agent(tmp_path: Path) -> None:
    """kill -9 of the supervisor during review, then 'swarmlog run --resume'."""
    night = Night(tmp_path)
    _start(night)
    night.claim("rv-0-r1-present")
    night.add(RunStarted(goal="g", resumed=True))  # the builder has not registered yet
    night.expire()
    assert [t.task_id for t in night.timeouts()] == ["rv-0-r1-present"]
    assert night.changes() == []
    assert project(night.events()).team.agents["builder"].trust == 7.0


def test_another_agents_restart_or_an_earlier_one_does_not_excuse_a_timeout(
    tmp_path: Path,
) -> None:
    night = Night(tmp_path)
    _start(night)
    night.add(AgentRegistered(agent="builder", role="builder", pid=2))  # before the claim
    night.claim("w-auth")
    night.add(AgentRegistered(agent="inspector", role="inspector", pid=3))
    night.expire()
    (change,) = night.changes()
    assert (change.agent, change.new) == ("builder", 6.0)


def test_the_rule_is_a_pure_fold_of_the_log(tmp_path: Path) -> None:
    """Folding from zero or resuming from a folded state says the same, and a new night starts
    its bookkeeping afresh (last night's registration excuses nothing tonight)."""
    night = Night(tmp_path)
    _start(night)
    night.claim("w-auth")
    night.add(AgentRegistered(agent="builder", role="builder", pid=2))
    events = night.events()
    whole = trust.project(events)
    resumed = trust.project(events[3:], trust.project(events[:3]))
    assert whole == resumed
    assert trust.crashed(whole, "w-auth", "builder")
    assert not trust.crashed(whole, "unknown", "builder")  # no claim known: the agent's own
    new_night = trust.apply(whole, RunStarted(goal="g", run="r2", seq=99))
    assert new_night.registered == {} and new_night.claimed == {}
    claimed = trust.apply(
        new_night, TaskClaimed(task_id="w-auth", agent="builder", lease_until=1.0, seq=100)
    )
    assert not trust.crashed(claimed, "w-auth", "builder")
