"""Queue depth (seed §4, "queue depth > 50 requests"): the backlog of work that could run now but
has no model yet, i.e. ready tasks (every dependency done) and routed ones not yet started, never
tasks still waiting for their dependencies (a team plan may hold 200 work items)."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st
from task_events import task_events

from swarmlog.escalation.detectors import DetectorState, observe
from swarmlog.events import (
    ConfigLoaded,
    DetectorFired,
    Event,
    RunStarted,
    TaskCancelled,
    TaskClaimed,
    TaskCompleted,
    TaskFailed,
    TaskRouted,
    TaskStarted,
    TaskSubmitted,
    TaskTimedOut,
)
from swarmlog.runtime.board import CLAIMED, ROUTED, Board, apply_board, ready_to_route

T0 = 1_795_000_000.0


class Night:
    """Folds hand-built events (dense seqs, one second apart) into the detectors and the board."""

    def __init__(self) -> None:
        self.seq = 0
        self.run = "r1"
        self.detectors = DetectorState()
        self.board = Board()
        self.fired: list[DetectorFired] = []

    def add(self, *events: Any) -> list[DetectorFired]:
        new: list[DetectorFired] = []
        for e in events:
            self.seq += 1
            stored: Event = msgspec.structs.replace(e, seq=self.seq, ts=T0 + self.seq, run=self.run)
            self.detectors, out = observe(self.detectors, stored)
            self.board = apply_board(self.board, stored)
            new += out
            # The detector's backlog is the board's: ready to route, or routed and not started.
            waiting = {t.task_id for t in ready_to_route(self.board)} | {
                t.task_id for t in self.board.tasks.values() if t.status in (ROUTED, CLAIMED)
            }
            assert set(self.detectors.queued) == waiting, f"after {stored}"
        self.fired += new
        return new

    def start_run(self, run: str) -> None:
        self.run = run
        self.add(RunStarted(goal="g"))

    def work(self, task_id: str, model: str = "m") -> list[DetectorFired]:
        """Route, claim, start and complete one task."""
        return self.add(
            TaskRouted(task_id=task_id, model=model),
            TaskClaimed(task_id=task_id, agent="builder", lease_until=T0 + 10**6, attempt=1),
            TaskStarted(task_id=task_id, agent="builder"),
            TaskCompleted(task_id=task_id, agent="builder"),
        )


def _chains(chains: int, length: int) -> list[TaskSubmitted]:
    """``chains`` chains of ``length`` tasks, each waiting for the one before it."""
    return [
        TaskSubmitted(task_id=f"c{c}-{n}", title="t", deps=(f"c{c}-{n - 1}",) if n else ())
        for c in range(chains)
        for n in range(length)
    ]


def test_a_big_plan_in_dependency_chains_is_no_backlog() -> None:
    night = Night()
    night.start_run("r1")
    assert night.add(*_chains(10, 12)) == []  # 120 work items, 10 of them ready
    assert len(night.detectors.queued) == 10
    for n in range(12):  # the chains advance one step at a time; nothing is stuck
        for c in range(10):
            assert night.work(f"c{c}-{n}") == []
    assert night.fired == [] and night.detectors.queued == {}


def test_sixty_ready_tasks_no_model_takes_fire_once() -> None:
    night = Night()
    night.start_run("r1")
    night.add(TaskSubmitted(task_id="plan", title="plan"))
    night.add(*[TaskSubmitted(task_id=f"w{i}", title="w", deps=("plan",)) for i in range(60)])
    assert night.fired == []  # sixty wait for the plan: no backlog yet
    (fire,) = night.work("plan")  # the plan is done: sixty are ready and nothing takes them
    assert fire.detector == "queue_depth" and fire.level == 3
    assert (fire.value, fire.threshold) == (60, 50)
    assert fire.evidence[-1] == night.seq  # the completion that made them ready
    # Routed to a model that never claims them: still the same backlog, no second alert.
    assert night.add(*[TaskRouted(task_id=f"w{i}", model="m") for i in range(60)]) == []
    assert len(night.detectors.queued) == 60


def test_sixty_routed_tasks_nobody_claims_fire() -> None:
    night = Night()
    night.start_run("r1")
    night.add(*[TaskSubmitted(task_id=f"w{i}", title="w") for i in range(60)])
    fires = [f for f in night.fired if f.detector == "queue_depth"]
    assert [f.value for f in fires] == [51]
    night.add(*[TaskRouted(task_id=f"w{i}", model="m") for i in range(60)])
    assert len(night.fired) == 1


def test_dependants_of_a_cancelled_task_never_become_backlog() -> None:
    night = Night()
    night.start_run("r1")
    night.add(TaskSubmitted(task_id="root", title="r"))
    night.add(*[TaskSubmitted(task_id=f"w{i}", title="w", deps=("root",)) for i in range(60)])
    night.add(TaskCancelled(task_id="root", reason="not needed"))
    assert night.fired == [] and night.detectors.queued == {}


def test_a_task_finished_before_its_dependencies_never_becomes_backlog() -> None:
    """A hand-written log may finish a task that still waits for its dependencies: it is done,
    so when they are done too it is no backlog (the board agrees, ``Night`` checks)."""
    night = Night()
    night.start_run("r1")
    night.add(TaskSubmitted(task_id="plan", title="plan"))
    night.add(*[TaskSubmitted(task_id=f"w{i}", title="w", deps=("plan",)) for i in range(60)])
    night.add(*[TaskCompleted(task_id=f"w{i}", agent="builder") for i in range(60)])
    assert night.work("plan") == []
    assert night.fired == [] and night.detectors.queued == {}


def test_a_new_night_starts_with_no_backlog() -> None:
    """The log keeps every night; last night's unstarted tasks are not tonight's backlog."""
    night = Night()
    night.start_run("r1")
    night.add(*[TaskSubmitted(task_id=f"a{i}", title="a") for i in range(40)])
    night.start_run("r2")
    assert night.add(*[TaskSubmitted(task_id=f"b{i}", title="b") for i in range(20)]) == []
    assert len(night.detectors.queued) == 20


def test_tasks_timed_out_on_their_last_attempt_are_failed_not_backlog() -> None:
    """A time-out on the last attempt fails the task for good (the shared claim rule): it waits
    for nothing, so sixty of them are no backlog."""
    night = Night()
    night.start_run("r1")
    for i in range(60):
        night.add(
            TaskSubmitted(task_id=f"w{i}", title="w", max_attempts=1),
            TaskRouted(task_id=f"w{i}", model="m"),
            TaskClaimed(task_id=f"w{i}", agent="builder", lease_until=T0 + 10**6, attempt=1),
            TaskTimedOut(task_id=f"w{i}", agent="builder"),
        )
    assert night.board.tasks["w0"].status == "failed"
    assert night.fired == [] and night.detectors.queued == {}


def test_a_retryable_failure_returns_the_task_to_the_backlog_at_once() -> None:
    """A retryable failure puts the task back in the pool, ready to route again: it is backlog
    from that failure on, not only once the router routes it again."""
    night = Night()
    night.start_run("r1")
    night.add(ConfigLoaded(config={"models": {"m": {"parallel": 60}}}))
    for i in range(60):  # sixty calls under way: no backlog
        night.add(
            TaskSubmitted(task_id=f"w{i}", title="w"),
            TaskRouted(task_id=f"w{i}", model="m"),
            TaskClaimed(task_id=f"w{i}", agent=f"b{i}", lease_until=T0 + 10**6, attempt=1),
            TaskStarted(task_id=f"w{i}", agent=f"b{i}"),
        )
    assert night.fired == [] and night.detectors.queued == {}
    night.add(
        *[
            TaskFailed(task_id=f"w{i}", agent=f"b{i}", error="model timeout", retryable=True)
            for i in range(60)
        ]
    )
    assert len(night.detectors.queued) == 60  # all sixty back in the pool, nobody routes them
    (fire,) = night.fired
    assert (fire.detector, fire.value) == ("queue_depth", 51)
    assert fire.evidence[-1] == night.detectors.queued["w50"]  # the failure that returned w50


# Random task events: every status the shared claim rule can reach (void claims, expired leases,
# batches, retries, attempts used up, dependencies), checked against the board after each event

_event = task_events(st.floats(T0, T0 + 40))


@settings(max_examples=300, deadline=None)
@given(st.lists(_event, max_size=40))
def test_the_backlog_is_the_boards_after_any_task_events(events: list[Any]) -> None:
    night = Night()
    night.start_run("r1")
    night.add(*events)  # ``Night`` compares the backlog with the board after every event
