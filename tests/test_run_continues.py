"""One rule says whether a run_started continues the run in progress (``RunStarted.continues``):
it is resumed and names that run. Every fold that keeps a run's own state (the run context, trust
bookkeeping, both boards, the detectors, escalation levels and circuit breakers) follows it, so a
resumed run_started naming another run starts that run afresh everywhere (the supervisor never
writes one; a hand-written log may)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from swarmlog.escalation import breakers, detectors, levels
from swarmlog.events import (
    Event,
    RunStarted,
    TaskClaimed,
    TaskRouted,
    TaskSubmitted,
)
from swarmlog.runtime.board import project_board
from swarmlog.runtime.context import project_context
from swarmlog.state import project
from swarmlog.team import trust


def _log(*events: Any) -> list[Event]:
    return [msgspec.structs.replace(e, seq=n, ts=1000.0 + n) for n, e in enumerate(events, 1)]


def test_continues_needs_resumed_and_the_same_run() -> None:
    assert RunStarted(goal="g", run="r1", resumed=True).continues("r1")
    assert not RunStarted(goal="g", run="r2", resumed=True).continues("r1")
    assert not RunStarted(goal="g", run="r1").continues("r1")


@pytest.mark.parametrize(("run", "goes_on"), [("r1", True), ("r2", False)])
def test_every_fold_follows_the_one_rule(run: str, goes_on: bool) -> None:
    events = _log(
        RunStarted(goal="g", run="r1"),
        TaskSubmitted(task_id="a", title="A", run="r1"),
        TaskSubmitted(task_id="b", title="B", run="r1"),
        TaskRouted(task_id="a", model="m", run="r1"),
        TaskClaimed(task_id="a", agent="builder", lease_until=10**6, attempt=1, run="r1"),
        RunStarted(goal="g", run=run, resumed=True),
    )
    restart = events[-1].seq
    ctx = project_context(events)
    assert ctx.run == run and ctx.run_seq == (1 if goes_on else restart)
    assert trust.project(events).holders == ({"a": "builder"} if goes_on else {})
    assert set(project_board(events).tasks) == ({"a", "b"} if goes_on else set())
    state = project(events)
    assert set(dict(state.board.tasks.items())) == ({"a", "b"} if goes_on else set())
    assert state.team.started_ts == (1001.0 if goes_on else 1000.0 + restart)
    det, _ = detectors.observe_all(events)
    assert det.run == run and set(det.queued) == ({"a", "b"} if goes_on else set())
    assert det.run_start_seq == (1 if goes_on else restart)
    assert levels.project(events).run == run
    brk = breakers.EMPTY
    for e in events:
        brk = breakers.apply(brk, e)
    assert brk.run == run
