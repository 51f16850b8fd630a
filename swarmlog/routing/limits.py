"""Concurrency limits as pure checks: in-flight per model ≤ its slots, a bounded queue, a run cap,
and a role's tasks routed, claimed or running at once ≤ its ``[agents.ROLE].max_concurrent``.

Ollama waits without limit once a model is loaded (PROTOCOLS.md), so swarmlog counts its own
in-flight requests per model and pushes back with QueueFull instead of piling work up.
"""

from __future__ import annotations

from swarmlog.errors import QueueFull
from swarmlog.routing.stats import RouterState

__all__ = ["admit", "can_start", "in_flight", "queued", "role_full", "total_in_flight"]


def in_flight(state: RouterState, model: str) -> int:
    """Return how many started calls a model has."""
    ld = state.load.get(model)
    return ld.started if ld is not None else 0


def queued(state: RouterState) -> int:
    """Return how many routed tasks wait for a slot, over all models."""
    return sum(ld.assigned - ld.started for ld in state.load.values())


def total_in_flight(state: RouterState) -> int:
    """Return the started calls over all models."""
    return sum(ld.started for ld in state.load.values())


def admit(state: RouterState) -> None:
    """Raise QueueFull when routing one more task would exceed the bounded queue."""
    depth = state.config.queue_depth
    waiting = queued(state)
    if waiting >= depth:
        raise QueueFull(
            f"dispatch queue is full: {waiting} routed tasks wait for a slot (queue_depth "
            f"{depth}); back off and retry, or raise [limits] queue_depth"
        )


def can_start(state: RouterState, model: str) -> bool:
    """Say whether a routed task may start on ``model`` now (its slots and the run cap)."""
    profile = state.config.profile(model)
    if profile is None:
        return False
    if in_flight(state, model) >= profile.slots:
        return False
    cap = state.config.max_concurrent
    return cap is None or total_in_flight(state) < cap


def role_full(state: RouterState, role: str) -> str | None:
    """Say why one more task of ``role`` must wait (its ``max_concurrent`` reached), or None.

    A task counts from its ``task_routed`` until it completes, fails, times out or is cancelled.
    """
    policy = state.config.roles.get(role) if role else None
    cap = policy.max_concurrent if policy is not None else None
    if cap is None:
        return None
    active = state.roles.get(role, 0)
    if active < cap:
        return None
    return (
        f"role {role} has {active} task(s) routed, claimed or running "
        f"([agents.{role}].max_concurrent = {cap}); the next waits"
    )
