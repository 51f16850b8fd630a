"""Plan cost-aware batches: small same-kind tasks for the fast tier share one model call.

Pure: the caller passes the waiting tasks with the event time each became ready and the current
event time; the plan says which groups to send now (each with its ``task_batched`` event), which
tasks go alone, and which keep waiting for company. The runtime makes the call and splits the reply;
a malformed batch reply falls back to single calls there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import msgspec

from swarmlog.events import TaskBatched
from swarmlog.routing.complexity import TaskFeatures, estimate
from swarmlog.routing.profile import BatchLimits

__all__ = ["BatchPlan", "batch_id", "is_batchable", "plan_batches"]


class BatchPlan(msgspec.Struct, frozen=True, kw_only=True):
    """What to send now and what to hold back."""

    batches: tuple[TaskBatched, ...] = ()
    singles: tuple[str, ...] = ()  # send alone now
    waiting: tuple[str, ...] = ()  # hold until company arrives or max_wait_s passes


def batch_id(task_ids: Sequence[str]) -> str:
    """Return a deterministic id for a group of tasks."""
    return "b-" + hashlib.blake2b(",".join(task_ids).encode(), digest_size=6).hexdigest()


def is_batchable(task: TaskFeatures, limits: BatchLimits) -> bool:
    """Say whether a task is small fast-tier work that may share a call."""
    if task.interactive:
        return False
    cx = estimate(task)
    return cx.tier == "fast" and task.prompt_tokens <= limits.max_tokens // 2


def plan_batches(
    ready: Sequence[tuple[TaskFeatures, float]],
    *,
    model: str,
    limits: BatchLimits,
    now: float,
) -> BatchPlan:
    """Group ready tasks (with the event time each became ready) for one fast-tier model."""
    singles: list[str] = []
    waiting: list[str] = []
    batches: list[TaskBatched] = []
    groups: dict[str, list[tuple[TaskFeatures, float]]] = {}
    for task, since in ready:
        if limits.max_size < 2 or not is_batchable(task, limits):
            singles.append(task.task_id)
        else:
            groups.setdefault(task.task_kind, []).append((task, since))
    for kind, members in groups.items():
        chunk: list[tuple[TaskFeatures, float]] = []
        tokens = 0
        chunks: list[tuple[list[tuple[TaskFeatures, float]], bool]] = []
        for task, since in members:
            if chunk and (
                len(chunk) >= limits.max_size or tokens + task.prompt_tokens > limits.max_tokens
            ):
                chunks.append((chunk, True))
                chunk, tokens = [], 0
            chunk.append((task, since))
            tokens += task.prompt_tokens
        if chunk:
            chunks.append((chunk, len(chunk) >= limits.max_size))
        for members_, full in chunks:
            ids = [t.task_id for t, _ in members_]
            oldest = min(s for _, s in members_)
            expired = now - oldest >= limits.max_wait_s
            if not full and not expired:
                waiting.extend(ids)
            elif len(ids) == 1:
                singles.append(ids[0])
            else:
                why = "full" if full else f"waited {now - oldest:.3f}s"
                batches.append(
                    TaskBatched(
                        batch_id=batch_id(ids),
                        task_ids=tuple(ids),
                        model=model,
                        reason=f"{len(ids)} {kind} tasks, {why}",
                    )
                )
    return BatchPlan(batches=tuple(batches), singles=tuple(singles), waiting=tuple(waiting))
