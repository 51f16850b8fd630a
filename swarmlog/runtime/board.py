"""The dispatch board: a pure fold of task events into what can be routed, claimed and finished.

The scheduler and every agent process fold the same log into the same board, so they agree on
who holds what without talking to each other. Claims are leases in event time: a lease that runs
out returns the task to the pool (the scheduler records ``task_timed_out``).

Which claim wins, how long a lease lasts and how many calls a model may run (a batch is one
call) is decided by ``swarmlog.state.claims``, the rule the rendered board (``swarmlog.state``)
folds too, so the Markdown shows exactly the holders, states and leases this board acts on.
This board adds what the dispatcher needs besides: task prompts, outputs, which tasks may be
routed.
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
    TaskCompleted,
    TaskFailed,
    TaskRouted,
    TaskSubmitted,
    TaskTimedOut,
)
from swarmlog.state import claims as rule
from swarmlog.state.claims import (
    ACTIVE,
    CANCELLED,
    CLAIMED,
    DONE,
    EMPTY_CLAIMS,
    FAILED,
    FINISHED,
    ROUTED,
    RUNNING,
    SUBMITTED,
    Claim,
    Claims,
)

__all__ = [
    "ACTIVE",
    "CANCELLED",
    "CLAIMED",
    "DONE",
    "EMPTY_BOARD",
    "FAILED",
    "FINISHED",
    "ROUTED",
    "RUNNING",
    "SUBMITTED",
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


class TaskView(msgspec.Struct, frozen=True, kw_only=True):
    """One task as the dispatcher sees it.

    ``status``, ``model``, ``agent``, ``attempt``, ``max_attempts``, ``batch_id`` and
    ``lease_until`` are the task's ``Claim`` and lease under the shared rule (``_claim_of``).
    """

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
    lease_until: float = 0.0  # while claimed or running; 0.0 otherwise
    submitted_seq: int = 0
    finished_seq: int = 0
    error: str = ""
    output: dict[str, object] = msgspec.field(default_factory=dict)
    batch_id: str = ""  # set while the task shares a model call with others
    routed_ts: float = 0.0  # event time of its latest routing (a batch's wait counts from it)


class Board(msgspec.Struct, frozen=True, kw_only=True):
    """Every task of the current run by id, in submission order, and the run's claims.

    ``claims`` holds the slots (per model) and ``max_concurrent`` of the config in force and the
    holder and lease of every claimed or running task; a claim that would exceed the slots at
    its place in the log is void, so concurrent agents can never overrun a model's parallel
    slots however their appends interleave.
    """

    seq: int = 0
    run: str = ""
    tasks: dict[str, TaskView] = msgspec.field(default_factory=dict)
    claims: Claims = EMPTY_CLAIMS

    @property
    def slots(self) -> dict[str, int]:
        """Parallel calls per model, from the config in force."""
        return self.claims.slots


EMPTY_BOARD = Board()


def _claim_of(task: TaskView) -> Claim:
    """The task's part in the shared claim rule."""
    return Claim(
        status=task.status,
        model=task.model,
        agent=task.agent,
        attempt=task.attempt,
        max_attempts=task.max_attempts,
        batch_id=task.batch_id,
    )


def _with_claim(task: TaskView, claim: Claim, claims: Claims) -> TaskView:
    return replace(
        task,
        status=claim.status,
        model=claim.model,
        agent=claim.agent,
        attempt=claim.attempt,
        batch_id=claim.batch_id,
        lease_until=rule.lease_of(claims, task.task_id),
    )


def _resumed(board: Board) -> Board:
    """Every task held when the team restarted gets its attempt back (``claims.resumed``)."""
    tasks = dict(board.tasks)
    for task_id in board.claims.held:
        current = tasks.get(task_id)
        if current is not None:
            tasks[task_id] = replace(
                current, max_attempts=rule.resumed(_claim_of(current)).max_attempts
            )
    return replace(board, tasks=tasks) if board.claims.held else board


def _put(board: Board, task: TaskView, seq: int, claims: Claims) -> Board:
    return replace(board, seq=seq, tasks={**board.tasks, task.task_id: task}, claims=claims)


def apply_board(board: Board, event: Event) -> Board:
    """Fold one event into the board."""
    seq = event.seq
    match event:
        case RunStarted():
            if event.continues(board.run):
                return _resumed(replace(board, seq=seq))
            return Board(seq=seq, run=event.run, claims=rule.new_run(board.claims))
        case ConfigLoaded():
            return replace(board, seq=seq, claims=rule.configure(board.claims, event.config))
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
            return _put(board, task, seq, board.claims)
        case Heartbeat():
            claims = rule.extend(board.claims, event)
            current = board.tasks.get(event.task_id)
            if claims is board.claims or current is None:
                return replace(board, seq=seq) if board.seq != seq else board
            task = replace(current, lease_until=rule.lease_of(claims, event.task_id))
            return _put(board, task, seq, claims)
        case TaskBatched():
            return _batch(board, event, seq)
    task_id = getattr(event, "task_id", None)
    current = board.tasks.get(task_id) if isinstance(task_id, str) else None
    if current is None or current.status in FINISHED:
        return replace(board, seq=seq) if board.seq != seq else board
    before = _claim_of(current)
    claims, after = rule.step(board.claims, before, event)
    if after is before:
        return replace(board, seq=seq)  # void, or no task event
    task = _with_claim(current, after, claims)
    match event:
        case TaskRouted():
            task = replace(task, routed_ts=event.ts)
        case TaskCompleted():
            task = replace(task, output=dict(event.output), finished_seq=seq, error="")
        case TaskFailed():
            task = replace(
                task, error=event.error, finished_seq=seq if after.status == FAILED else 0
            )
        case TaskTimedOut():
            finished = seq if after.status == FAILED else 0
            task = replace(task, error="timed out", finished_seq=finished)
        case TaskCancelled():
            task = replace(task, finished_seq=seq, error=event.reason)
    return _put(board, task, seq, claims)


def _batch(board: Board, event: TaskBatched, seq: int) -> Board:
    """Mark routed tasks as sharing one call; members no longer routed are left out."""
    tasks = dict(board.tasks)
    for task_id in event.task_ids:
        task = tasks.get(task_id)
        if task is None:
            continue
        before = _claim_of(task)
        after = rule.batch(before, event)
        if after is not before:
            tasks[task_id] = _with_claim(task, after, board.claims)
    return replace(board, seq=seq, tasks=tasks)


def project_board(events: Iterable[Event], board: Board = EMPTY_BOARD) -> Board:
    """Fold many events."""
    for event in events:
        board = apply_board(board, event)
    return board


def ready_to_route(board: Board) -> list[TaskView]:
    """Tasks waiting for a model whose dependencies are all done, in submission order."""
    done = {task_id for task_id, t in board.tasks.items() if t.status == DONE}
    return [t for t in board.tasks.values() if rule.ready(t.status, t.deps, done)]


def has_capacity(board: Board, model: str) -> bool:
    """Whether one more call may start on ``model``: its slots and the run-wide cap.

    A batch is one call, so its members together take one slot.
    """
    return rule.has_capacity(board.claims, model)


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
    return rule.in_flight_by_model(board.claims)
