"""The dispatch board: a pure fold of task events into what can be routed, claimed and finished.

The scheduler and every agent process fold the same log into the same board, so they agree on
who holds what without talking to each other. Claims are leases in event time: a lease that runs
out returns the task to the pool (the scheduler records ``task_timed_out``).

``swarmlog.state`` keeps its own task board for the Markdown (tokens, cost, timings, counts). This
one decides: which claim wins, how many calls a model may run (a batch is one call), which tasks
may be routed. The rendered board follows the same first-live-claim rule for the holder it shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec
from msgspec.structs import replace

from swarmlog.events import (
    ConfigLoaded,
    Event,
    Heartbeat,
    RunStarted,
    TaskBatched,
    TaskCancelled,
    TaskClaimed,
    TaskCompleted,
    TaskFailed,
    TaskRouted,
    TaskStarted,
    TaskSubmitted,
    TaskTimedOut,
)

__all__ = [
    "ACTIVE",
    "EMPTY_BOARD",
    "FINISHED",
    "Board",
    "TaskView",
    "apply_board",
    "claimable",
    "expired_leases",
    "has_capacity",
    "in_flight_by_model",
    "project_board",
    "ready_to_route",
]

# Task states
SUBMITTED, ROUTED, CLAIMED, RUNNING = "submitted", "routed", "claimed", "running"
DONE, FAILED, CANCELLED = "done", "failed", "cancelled"
ACTIVE = frozenset({CLAIMED, RUNNING})
FINISHED = frozenset({DONE, FAILED, CANCELLED})


class TaskView(msgspec.Struct, frozen=True, kw_only=True):
    """One task as the dispatcher sees it."""

    task_id: str
    title: str
    task_kind: str
    role: str
    phase: str = ""
    deps: tuple[str, ...] = ()
    parent: str = ""
    round: int = 0
    prompt: str = ""
    files: tuple[str, ...] = ()
    max_attempts: int = 3
    status: str = SUBMITTED
    model: str = ""
    agent: str = ""
    attempt: int = 0  # attempts started (claims)
    lease_until: float = 0.0
    submitted_seq: int = 0
    finished_seq: int = 0
    error: str = ""
    output: dict[str, object] = msgspec.field(default_factory=dict)
    batch_id: str = ""  # set while the task shares a model call with others


class Board(msgspec.Struct, frozen=True, kw_only=True):
    """Every task of the current run by id, in submission order, and the run's capacity.

    ``slots`` (per model) and ``max_concurrent`` come from the config in force; a claim that
    would exceed them at its place in the log is void, so concurrent agents can never overrun a
    model's parallel slots however their appends interleave.
    """

    seq: int = 0
    run: str = ""
    tasks: dict[str, TaskView] = msgspec.field(default_factory=dict)
    slots: dict[str, int] = msgspec.field(default_factory=dict)
    max_concurrent: int = 0  # 0: no run-wide cap


EMPTY_BOARD = Board()


def _put(board: Board, task: TaskView, seq: int) -> Board:
    return replace(board, seq=seq, tasks={**board.tasks, task.task_id: task})


def apply_board(board: Board, event: Event) -> Board:
    """Fold one event into the board."""
    seq = event.seq
    match event:
        case RunStarted(resumed=False):
            return Board(
                seq=seq, run=event.run, slots=board.slots, max_concurrent=board.max_concurrent
            )
        case ConfigLoaded():
            models = event.config.get("models", {})
            slots = {name: int(m.get("parallel") or 1) for name, m in models.items()}
            cap = int(event.config.get("limits", {}).get("max_concurrent") or 0)
            return replace(board, seq=seq, slots=slots, max_concurrent=cap)
        case RunStarted():
            return replace(board, seq=seq, run=event.run)
        case TaskSubmitted():
            if event.task_id in board.tasks:
                return replace(board, seq=seq)
            task = TaskView(
                task_id=event.task_id,
                title=event.title,
                task_kind=event.task_kind,
                role=event.role,
                phase=event.phase,
                deps=event.deps,
                parent=event.parent,
                round=event.round,
                prompt=event.prompt,
                files=event.files,
                max_attempts=event.max_attempts,
                submitted_seq=seq,
            )
            return _put(board, task, seq)
    task_id = getattr(event, "task_id", None)
    current = board.tasks.get(task_id) if isinstance(task_id, str) else None
    if current is None or current.status in FINISHED:
        return replace(board, seq=seq) if board.seq != seq else board
    match event:
        case TaskRouted():
            task = replace(current, status=ROUTED, model=event.model, batch_id="")
        case TaskBatched():
            return _batch(board, event, seq)
        case TaskClaimed():
            if current.status in ACTIVE and current.lease_until > event.ts:
                return replace(board, seq=seq)  # a losing claim: the lease holder keeps it
            if (
                current.status not in ACTIVE
                and not _joins_batch(board, current, event.agent)
                and not has_capacity(board, current.model)
            ):
                return replace(board, seq=seq)  # void: the model's slots were all taken
            task = replace(
                current,
                status=CLAIMED,
                agent=event.agent,
                attempt=event.attempt,
                lease_until=event.lease_until,
            )
        case TaskStarted():
            task = replace(current, status=RUNNING)
        case Heartbeat() if event.agent == current.agent and event.lease_until:
            task = replace(current, lease_until=max(current.lease_until, event.lease_until))
        case TaskCompleted():
            task = replace(
                current, status=DONE, output=dict(event.output), finished_seq=seq, error=""
            )
        case TaskFailed():
            exhausted = not event.retryable or current.attempt >= current.max_attempts
            task = replace(
                current,
                status=FAILED if exhausted else SUBMITTED,
                agent="",
                lease_until=0.0,
                error=event.error,
                finished_seq=seq if exhausted else 0,
            )
        case TaskTimedOut():
            exhausted = current.attempt >= current.max_attempts
            task = replace(
                current,
                status=FAILED if exhausted else SUBMITTED,
                agent="",
                lease_until=0.0,
                error="timed out",
                finished_seq=seq if exhausted else 0,
            )
        case TaskCancelled():
            task = replace(current, status=CANCELLED, finished_seq=seq, error=event.reason)
        case _:
            return replace(board, seq=seq)
    return _put(board, task, seq)


def _batch(board: Board, event: TaskBatched, seq: int) -> Board:
    """Mark routed tasks as sharing one call; members no longer routed are left out."""
    tasks = dict(board.tasks)
    for task_id in event.task_ids:
        task = tasks.get(task_id)
        if task is not None and task.status == ROUTED and task.model == event.model:
            tasks[task_id] = replace(task, batch_id=event.batch_id)
    return replace(board, seq=seq, tasks=tasks)


def _joins_batch(board: Board, task: TaskView, agent: str) -> bool:
    """A claim for a batch member whose batch this agent already holds takes no new slot."""
    return bool(task.batch_id) and any(
        t.batch_id == task.batch_id and t.status in ACTIVE and t.agent == agent
        for t in board.tasks.values()
    )


def project_board(events: Iterable[Event], board: Board = EMPTY_BOARD) -> Board:
    """Fold many events."""
    for event in events:
        board = apply_board(board, event)
    return board


def ready_to_route(board: Board) -> list[TaskView]:
    """Tasks waiting for a model whose dependencies are all done, in submission order."""
    tasks = board.tasks
    return [
        t
        for t in tasks.values()
        if t.status == SUBMITTED
        and all(tasks.get(d) is not None and tasks[d].status == DONE for d in t.deps)
    ]


def has_capacity(board: Board, model: str) -> bool:
    """Whether one more call may start on ``model``: its slots and the run-wide cap.

    A batch is one call, so its members together take one slot.
    """
    calls = {(t.model, t.batch_id or t.task_id) for t in board.tasks.values() if t.status in ACTIVE}
    if board.max_concurrent and len(calls) >= board.max_concurrent:
        return False
    return sum(1 for m, _ in calls if m == model) < board.slots.get(model, 1)


def claimable(board: Board, role: str, now: float) -> list[TaskView]:
    """Routed tasks for ``role`` that may start now, in submission order."""
    return [
        t
        for t in board.tasks.values()
        if t.role == role and t.status == ROUTED and has_capacity(board, t.model)
    ]


def expired_leases(board: Board, now: float) -> list[TaskView]:
    """Claimed or running tasks whose lease ran out before ``now``."""
    return [t for t in board.tasks.values() if t.status in ACTIVE and t.lease_until <= now]


def in_flight_by_model(board: Board) -> Mapping[str, int]:
    """How many calls each model is working on (claimed or running; a batch counts once)."""
    calls = {(t.model, t.batch_id or t.task_id) for t in board.tasks.values() if t.status in ACTIVE}
    counts: dict[str, int] = {}
    for model, _ in calls:
        counts[model] = counts.get(model, 0) + 1
    return counts
