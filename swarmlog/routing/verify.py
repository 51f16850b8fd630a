"""Register the router's re-derivation with ``swarmlog replay --verify``.

Imported by ``swarmlog.replay.load_check_modules``: every ``task_routed`` is recomputed from the
router state folded up to the event before it.
"""

from __future__ import annotations

from swarmlog.events import Event, TaskRouted
from swarmlog.replay import register_fold_check
from swarmlog.routing.decide import rederive_route
from swarmlog.routing.stats import EMPTY, RouterState, apply

__all__ = ["check_task_routed", "unregister"]


def check_task_routed(state: RouterState, event: Event) -> str | None:
    """Return the difference between a recorded ``task_routed`` and its re-derivation, or None."""
    if not isinstance(event, TaskRouted):
        return None
    if not state.config.profiles:
        # No config_loaded before it (hand-written or pre-config logs): nothing to re-derive from.
        return None
    problem = rederive_route(state, event)
    if problem is None:
        return None
    return problem.removeprefix(f"seq {event.seq}: ")


unregister = register_fold_check("task_routed", apply, EMPTY, check_task_routed)
