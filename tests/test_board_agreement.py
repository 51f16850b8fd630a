"""The rendered task board shows exactly what the dispatch board decides: holder, state, lease.

Both fold task events through one rule (``swarmlog.state.claims``); these tests fold the same
events into both boards and compare them at every prefix: hand-made cases for the two known
former disagreements (a claim voided for full slots, a lease extended by heartbeats), random
event sequences, and the real logs of simulated team runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from task_events import task_events
from test_runtime_team import _run_team

from swarmlog.events import (
    AgentRegistered,
    ConfigLoaded,
    EventBase,
    Heartbeat,
    RunStarted,
    TaskClaimed,
    TaskCompleted,
    TaskFailed,
    TaskRouted,
    TaskSubmitted,
    TaskTimedOut,
)
from swarmlog.render import make_environment, render_team_state
from swarmlog.runtime.board import EMPTY_BOARD, Board, apply_board
from swarmlog.state import EMPTY, SwarmState, apply
from swarmlog.state.claims import lease_of


def _stamp(events: list[EventBase], step: float = 10.0) -> list[EventBase]:
    return [
        msgspec.structs.replace(e, seq=i + 1, ts=1000.0 + step * i) for i, e in enumerate(events)
    ]


def _fold_both(events: Sequence[Any]) -> list[tuple[Board, SwarmState]]:
    """Both boards after every prefix of ``events``."""
    board, state = EMPTY_BOARD, EMPTY
    out = []
    for event in events:
        board = apply_board(board, event)
        state = apply(state, event)
        out.append((board, state))
    return out


def _assert_agree(board: Board, state: SwarmState) -> None:
    rendered = dict(state.board.tasks.items())
    assert rendered.keys() == board.tasks.keys()
    for task_id, view in board.tasks.items():
        task = rendered[task_id]
        shown = (task.state, task.agent, task.attempts, task.model, task.batch_id)
        decided = (view.status, view.agent, view.attempt, view.model, view.batch_id)
        assert shown == decided, f"task {task_id} at seq {state.seq}"
        assert lease_of(state.board.claims, task_id) == view.lease_until, task_id
    assert state.board.claims == board.claims
    assert state.board.counts == dict(Counter(v.status for v in board.tasks.values()))


_CONFIG = {"models": {"m": {"parallel": 1}, "n": {"parallel": 2}}, "limits": {}}


def _two_tasks_on_one_slot() -> list[EventBase]:
    return [
        RunStarted(goal="g", run="r"),
        ConfigLoaded(config=_CONFIG, digest="d"),
        AgentRegistered(agent="builder", role="builder"),
        AgentRegistered(agent="builder-2", role="builder"),
        TaskSubmitted(task_id="a", title="Task A", role="builder"),
        TaskSubmitted(task_id="b", title="Task B", role="builder"),
        TaskRouted(task_id="a", model="m"),
        TaskRouted(task_id="b", model="m"),
        TaskClaimed(task_id="a", agent="builder", lease_until=2000.0),
    ]


def test_a_claim_voided_for_full_slots_is_not_shown_as_held() -> None:
    events = _stamp(
        [
            *_two_tasks_on_one_slot(),
            TaskClaimed(task_id="b", agent="builder-2", lease_until=2000.0),  # m's slot is taken
        ]
    )
    steps = _fold_both(events)
    for board, state in steps:
        _assert_agree(board, state)
    board, state = steps[-1]
    assert board.tasks["b"].status == "routed" and board.tasks["b"].agent == ""
    b = state.board.tasks.get("b")
    assert b is not None and b.state == "routed" and b.agent == ""
    assert "b" not in state.board.claims.held
    assert state.team.agents["builder-2"].task_id == ""
    assert state.board.counts == {"claimed": 1, "routed": 1}
    page = render_team_state(state, make_environment(None))
    row = next(line for line in page.splitlines() if "builder-2" in line.lower())
    assert "Task B" not in row


def test_once_the_slot_frees_the_next_claim_wins_in_both() -> None:
    events = _stamp(
        [
            *_two_tasks_on_one_slot(),
            TaskClaimed(task_id="b", agent="builder-2", lease_until=2000.0),  # void
            TaskCompleted(task_id="a", agent="builder"),
            TaskClaimed(task_id="b", agent="builder-2", lease_until=2000.0),  # now it wins
        ]
    )
    steps = _fold_both(events)
    for board, state in steps:
        _assert_agree(board, state)
    _, state = steps[-1]
    b = state.board.tasks.get("b")
    assert b is not None and (b.state, b.agent) == ("claimed", "builder-2")
    assert state.team.agents["builder-2"].task_id == "b"


def test_a_heartbeat_extended_lease_shows_the_same_holder_and_lease_in_both() -> None:
    events = _stamp(
        [
            RunStarted(goal="g", run="r"),
            TaskSubmitted(task_id="a", title="A", role="builder"),
            TaskRouted(task_id="a", model="m"),
            TaskClaimed(task_id="a", agent="builder", lease_until=1100.0),  # ts 1030
            Heartbeat(agent="builder", task_id="a", lease_until=1200.0),  # extends
            Heartbeat(agent="builder", task_id="a", lease_until=1150.0),  # never shortens
            Heartbeat(agent="builder-2", task_id="a", lease_until=1300.0),  # not the holder
            TaskClaimed(task_id="a", agent="builder-2", lease_until=1400.0),  # ts 1070: live
        ]
    )
    late = TaskClaimed(task_id="a", agent="builder-2", lease_until=1500.0, seq=9, ts=1250.0)
    steps = _fold_both([*events, late])  # the late claim comes after the extended lease ran out
    for board, state in steps:
        _assert_agree(board, state)
    leases = [lease_of(state.board.claims, "a") for _, state in steps[3:]]
    assert leases == [1100.0, 1200.0, 1200.0, 1200.0, 1200.0, 1500.0]
    holders = [state.board.tasks.get("a").agent for _, state in steps[3:]]
    assert holders == ["builder"] * 5 + ["builder-2"]


def test_retries_and_final_failure_agree() -> None:
    events = _stamp(
        [
            RunStarted(goal="g", run="r"),
            TaskSubmitted(task_id="a", title="A", role="builder", max_attempts=2),
            TaskRouted(task_id="a", model="m"),
            TaskClaimed(task_id="a", agent="builder", lease_until=5000.0, attempt=1),
            TaskFailed(task_id="a", agent="builder", error="bad reply"),
            TaskRouted(task_id="a", model="m"),
            TaskClaimed(task_id="a", agent="builder", lease_until=5000.0, attempt=2),
            TaskTimedOut(task_id="a", agent="builder", attempt=2),
            TaskCompleted(task_id="a", agent="builder", tokens_in=99),  # too late: failed for good
        ]
    )
    steps = _fold_both(events)
    for board, state in steps:
        _assert_agree(board, state)
    assert [s.board.tasks.get("a").state for _, s in steps[4:6]] == ["submitted", "routed"]
    _, state = steps[-1]
    assert state.board.counts == {"failed": 1} and state.board.tokens_in == 0


def test_a_new_run_starts_a_new_rendered_board_too() -> None:
    first = _two_tasks_on_one_slot()
    events = _stamp([*first, TaskCompleted(task_id="a", agent="builder"), *first])
    steps = _fold_both(events)
    for board, state in steps:
        _assert_agree(board, state)
    _, state = steps[-1]
    assert state.board.counts == {"claimed": 1, "routed": 1}
    assert state.board.claims.slots == {"m": 1, "n": 2}


# Random task events: any interleaving of rivals, slots, batches, heartbeats and failures

_event = task_events(st.floats(1000.0, 1400.0))


@settings(max_examples=200, deadline=None)
@given(st.lists(_event, max_size=40))
def test_both_boards_agree_at_every_prefix_of_random_task_events(events) -> None:
    for board, state in _fold_both(_stamp(events)):
        _assert_agree(board, state)


# Real logs: the team's own night, run on a real file log with a scenario's scripted replies


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", ["demo", "stuck"])
async def test_both_boards_agree_at_every_prefix_of_a_simulated_night(
    tmp_path: Path, scenario: str
) -> None:
    events = await _run_team(tmp_path, scenario)
    steps = _fold_both(events)
    claims = sum(1 for e in events if isinstance(e, TaskClaimed))
    assert claims and len({e.task_id for e in events if isinstance(e, TaskCompleted)}) > 3
    for board, state in steps:
        _assert_agree(board, state)
    board, state = steps[-1]
    assert board.tasks and not board.claims.held  # the night ended with nothing held


def test_a_task_held_when_the_team_restarts_gets_that_attempt_back_on_every_board() -> None:
    """Two supervisor restarts while the planner held its task must not fail the task: its
    holder died with the team, not of the task (seed: kill anything, nothing is lost)."""
    from swarmlog.escalation.detectors import observe_all

    def held_then_timed_out(attempt: int, resume: bool) -> list[EventBase]:
        restart = [RunStarted(goal="g", run="r", resumed=True)] if resume else []
        return [
            TaskRouted(task_id="a", model="m"),
            TaskClaimed(task_id="a", agent="director", lease_until=9e9, attempt=attempt),
            *restart,
            TaskTimedOut(task_id="a", agent="director"),
        ]

    events = _stamp(
        [
            RunStarted(goal="g", run="r"),
            TaskSubmitted(task_id="a", title="plan", role="director", max_attempts=2),
            *held_then_timed_out(1, resume=True),
            *held_then_timed_out(2, resume=False),
        ]
    )
    steps = _fold_both(events)
    for board, state in steps:
        _assert_agree(board, state)
    board, state = steps[-1]
    task = state.board.tasks.get("a")
    assert task is not None and (task.state, task.max_attempts) == ("submitted", 3)
    assert board.tasks["a"].max_attempts == 3
    detectors, _ = observe_all(events)
    assert detectors.tasks.get("a") == board_claim(board, "a")
    # Without a restart the attempts run out as before.
    steps = _fold_both(_stamp([*events, *held_then_timed_out(3, resume=False)]))
    _, state = steps[-1]
    task = state.board.tasks.get("a")
    assert task is not None and task.state == "failed"


def board_claim(board: Board, task_id: str) -> object:
    from swarmlog.runtime.board import _claim_of

    return _claim_of(board.tasks[task_id])
