"""Who holds each task: the one rule for claims, leases and model slots, shared by both boards.

The dispatch board (``swarmlog.runtime.board``) acts on this rule (which claim wins, which tasks may
still be claimed) and the rendered board (``swarmlog.state``) shows it; both pass every task event
through the functions here, so they cannot disagree on a task's status, holder or lease.

The rule, in event time (``ts``), at each event's place in the log:

- a claim on a claimed or running task whose lease is still live is void, whoever makes it;
- a claim on any other task is void when the model's parallel slots (``models.<name>.parallel``,
  1 when not configured) or the run-wide ``limits.max_concurrent`` are all taken, unless the
  claimer already holds another member of the same batch (a batch is one call: one slot);
- otherwise the claimer holds the task until its lease runs out; a heartbeat from the holder
  extends the lease (never shortens it); an expired lease can be claimed by anyone;
- a failure or a time-out puts the task back in the pool until ``max_attempts`` claims were used (a
  non-retryable failure ends it at once); done, failed and cancelled tasks never change again;
- a resumed run (the supervisor restarted the whole team) gives every task held at that moment one
  more attempt: its holder died with the team, not of the task, so the time-out that follows
  costs the task nothing.

A task is ready (``ready``) when it waits in the pool (submitted, or back there) and every task it
depends on is done in this run; the router routes only ready tasks, and the queue-depth detector
(``swarmlog.escalation.detectors``) counts ready and routed tasks not yet started, the work that
waits for a model, never the tasks that still wait for their dependencies.

A task's own part (``Claim``) lives in each board's record of the task; what concerns the run as a
whole (``Claims``: slots, the run-wide cap, and the holder and lease of every claimed or running
task) lives once per board. Every function is pure and returns its arguments unchanged (the very
same objects) when an event changes nothing, so a caller can test ``new is old``.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from typing import Any

import msgspec
from msgspec.structs import replace

from swarmlog.events import (
    Heartbeat,
    TaskBatched,
    TaskCancelled,
    TaskClaimed,
    TaskCompleted,
    TaskFailed,
    TaskRouted,
    TaskStarted,
    TaskTimedOut,
)

__all__ = [
    "ACTIVE",
    "CANCELLED",
    "CLAIMED",
    "DONE",
    "EMPTY_CLAIMS",
    "FAILED",
    "FINISHED",
    "ROUTED",
    "RUNNING",
    "SUBMITTED",
    "Claim",
    "Claims",
    "Hold",
    "batch",
    "cancel",
    "claim",
    "complete",
    "configure",
    "extend",
    "fail",
    "has_capacity",
    "in_flight_by_model",
    "lease_of",
    "new_run",
    "ready",
    "resumed",
    "route",
    "start",
    "step",
    "time_out",
]

# Task states
SUBMITTED, ROUTED, CLAIMED, RUNNING = "submitted", "routed", "claimed", "running"
DONE, FAILED, CANCELLED = "done", "failed", "cancelled"
ACTIVE = frozenset({CLAIMED, RUNNING})
FINISHED = frozenset({DONE, FAILED, CANCELLED})


class Claim(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One task's status and holder (its lease, while it is held, is in ``Claims.held``)."""

    status: str = SUBMITTED
    model: str = ""
    agent: str = ""
    attempt: int = 0  # the attempt of the last winning claim
    max_attempts: int = 3
    batch_id: str = ""  # set while the task shares a model call with others


class Hold(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """A claimed or running task's holder, the call it takes a slot for, and its lease."""

    agent: str
    model: str
    lease_until: float
    batch_id: str = ""


class Claims(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """The run's capacity and every task held now (claimed or running) by task id."""

    slots: dict[str, int] = {}  # model -> parallel calls
    max_concurrent: int = 0  # 0: no run-wide cap
    held: dict[str, Hold] = {}


EMPTY_CLAIMS = Claims()


# The run


def _int(value: object, default: int) -> int:
    if not value or not isinstance(value, (int, float, str)):
        return default
    try:
        return int(value)
    except ValueError:
        return default


def configure(claims: Claims, config: Mapping[str, Any]) -> Claims:
    """Take the slots and the run-wide cap from the config in force (``config_loaded``).

    A value that is not a number counts as not configured (1 slot, no cap): a hand-written
    ``config_loaded`` must not stop a fold.
    """
    models = config.get("models")
    limits = config.get("limits")
    slots = {
        str(name): _int(m.get("parallel"), 1) if isinstance(m, Mapping) else 1
        for name, m in (models.items() if isinstance(models, Mapping) else ())
    }
    cap = _int(limits.get("max_concurrent"), 0) if isinstance(limits, Mapping) else 0
    return replace(claims, slots=slots, max_concurrent=cap)


def resumed(task: Claim) -> Claim:
    """A task held when the run was resumed gets back the attempt the restart costs it."""
    return replace(task, max_attempts=task.max_attempts + 1)


def new_run(claims: Claims) -> Claims:
    """A new (not resumed) run holds nothing yet; the config in force stays."""
    return replace(claims, held={}) if claims.held else claims


# Capacity


def _calls(claims: Claims) -> set[tuple[str, str]]:
    """The model calls in flight: (model, batch or task id); a batch's members make one call."""
    return {(h.model, h.batch_id or task_id) for task_id, h in claims.held.items()}


def has_capacity(claims: Claims, model: str) -> bool:
    """Whether one more call may start on ``model``: its slots and the run-wide cap."""
    slots = claims.slots.get(model, 1)
    cap = claims.max_concurrent
    held = len(claims.held)  # never fewer than the calls in flight
    if held < slots and (not cap or held < cap):
        return True
    calls = _calls(claims)
    if cap and len(calls) >= cap:
        return False
    return sum(1 for m, _ in calls if m == model) < slots


def in_flight_by_model(claims: Claims) -> dict[str, int]:
    """How many calls each model is working on (claimed or running; a batch counts once)."""
    counts: dict[str, int] = {}
    for model, _ in _calls(claims):
        counts[model] = counts.get(model, 0) + 1
    return counts


def lease_of(claims: Claims, task_id: str) -> float:
    """The lease expiry of a held task (event time); 0.0 when nobody holds it."""
    hold = claims.held.get(task_id)
    return hold.lease_until if hold is not None else 0.0


def _joins_batch(claims: Claims, task: Claim, agent: str) -> bool:
    """A claim for a batch member whose batch this agent already holds takes no new slot."""
    return bool(task.batch_id) and any(
        h.batch_id == task.batch_id and h.agent == agent for h in claims.held.values()
    )


# Readiness


def ready(status: str, deps: Iterable[str], done: Container[str]) -> bool:
    """Whether a task may be routed: it waits in the pool (``submitted``) and every dependency is
    in ``done`` (the ids of this run's done tasks; a dependency that failed, was cancelled or is
    not in the run never is)."""
    return status == SUBMITTED and all(d in done for d in deps)


# Task events: each returns (claims, claim), the very same objects when nothing changes


def _settle(claims: Claims, task_id: str, task: Claim) -> Claims:
    """Keep ``held`` in step with the task: there while claimed or running, gone otherwise."""
    held = claims.held
    hold = held.get(task_id)
    if task.status not in ACTIVE:
        if hold is None:
            return claims
        return replace(claims, held={k: v for k, v in held.items() if k != task_id})
    if hold is not None and (hold.agent, hold.model, hold.batch_id) == (
        task.agent,
        task.model,
        task.batch_id,
    ):
        return claims
    lease = hold.lease_until if hold is not None else 0.0
    new = Hold(agent=task.agent, model=task.model, lease_until=lease, batch_id=task.batch_id)
    return replace(claims, held={**held, task_id: new})


def route(claims: Claims, task: Claim, event: TaskRouted) -> tuple[Claims, Claim]:
    """The router chose a model: the task waits for a claim (out of any batch)."""
    if task.status in FINISHED:
        return claims, task
    new = replace(task, status=ROUTED, model=event.model, batch_id="")
    return _settle(claims, event.task_id, new), new


def batch(task: Claim, event: TaskBatched) -> Claim:
    """A routed task for the batch's model joins the batch; any other member is left out."""
    if task.status == ROUTED and task.model == event.model:
        return replace(task, batch_id=event.batch_id)
    return task


def claim(claims: Claims, task: Claim, event: TaskClaimed) -> tuple[Claims, Claim]:
    """The first claim on a free task wins, if a slot is free; see the module's rule."""
    if task.status in FINISHED:
        return claims, task
    hold = claims.held.get(event.task_id)
    if hold is not None:
        if hold.lease_until > event.ts:
            return claims, task  # a losing claim: the lease holder keeps it
    elif not _joins_batch(claims, task, event.agent) and not has_capacity(claims, task.model):
        return claims, task  # void: the model's slots (or the run's) were all taken
    new = replace(task, status=CLAIMED, agent=event.agent, attempt=event.attempt)
    held = Hold(
        agent=event.agent, model=task.model, lease_until=event.lease_until, batch_id=task.batch_id
    )
    return replace(claims, held={**claims.held, event.task_id: held}), new


def start(claims: Claims, task: Claim, event: TaskStarted) -> tuple[Claims, Claim]:
    """The model call started (only the holder reports it): the task is running."""
    if task.status in FINISHED or task.status == RUNNING:
        return claims, task
    new = replace(task, status=RUNNING)
    return _settle(claims, event.task_id, new), new


def extend(claims: Claims, event: Heartbeat) -> Claims:
    """A heartbeat from the holder of a claimed or running task extends its lease."""
    hold = claims.held.get(event.task_id) if event.task_id else None
    if hold is None or hold.agent != event.agent or event.lease_until <= hold.lease_until:
        return claims
    held = {**claims.held, event.task_id: replace(hold, lease_until=event.lease_until)}
    return replace(claims, held=held)


def complete(claims: Claims, task: Claim, event: TaskCompleted) -> tuple[Claims, Claim]:
    """The task is done (whoever reports it, unless it had already finished)."""
    if task.status in FINISHED:
        return claims, task
    new = replace(task, status=DONE)
    return _settle(claims, event.task_id, new), new


def _release(claims: Claims, task: Claim, task_id: str, exhausted: bool) -> tuple[Claims, Claim]:
    new = replace(task, status=FAILED if exhausted else SUBMITTED, agent="")
    return _settle(claims, task_id, new), new


def fail(claims: Claims, task: Claim, event: TaskFailed) -> tuple[Claims, Claim]:
    """A failed attempt: back to the pool, or failed for good (attempts used up, not retryable)."""
    if task.status in FINISHED:
        return claims, task
    exhausted = not event.retryable or task.attempt >= task.max_attempts
    return _release(claims, task, event.task_id, exhausted)


def time_out(claims: Claims, task: Claim, event: TaskTimedOut) -> tuple[Claims, Claim]:
    """A lease ran out: back to the pool, or failed for good when attempts are used up."""
    if task.status in FINISHED:
        return claims, task
    return _release(claims, task, event.task_id, task.attempt >= task.max_attempts)


def cancel(claims: Claims, task: Claim, event: TaskCancelled) -> tuple[Claims, Claim]:
    """The task is cancelled."""
    if task.status in FINISHED:
        return claims, task
    new = replace(task, status=CANCELLED)
    return _settle(claims, event.task_id, new), new


_STEPS: dict[type, Any] = {
    TaskRouted: route,
    TaskClaimed: claim,
    TaskStarted: start,
    TaskCompleted: complete,
    TaskFailed: fail,
    TaskTimedOut: time_out,
    TaskCancelled: cancel,
}


def step(claims: Claims, task: Claim, event: object) -> tuple[Claims, Claim]:
    """Apply any one-task event (routed, claimed, started, completed, failed, timed out,
    cancelled); any other event changes nothing."""
    fn = _STEPS.get(type(event))
    return (claims, task) if fn is None else fn(claims, task, event)
