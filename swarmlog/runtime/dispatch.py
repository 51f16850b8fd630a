"""Route ready tasks, one decision at a time, each recorded as ``task_routed`` with its scores.

The decision is the router's pure ``choose_route`` over its replayable state. This module decides
*when* to ask: only tasks whose dependencies are done, never past the bounded queue (``QueueFull``
means wait), and a task no configured model could ever serve fails at once with the reason.
"""

from __future__ import annotations

from collections.abc import Callable

from swarmlog.errors import NoRouteAvailable, QueueFull
from swarmlog.events import Event, EventBase, TaskFailed, TaskRouted, TaskSubmitted
from swarmlog.routing import EMPTY, RouterState, apply, choose_route
from swarmlog.runtime.board import Board, ready_to_route

__all__ = ["Dispatcher"]


class Dispatcher:
    """Keep the router's state folded; propose the next routing decision."""

    def __init__(self) -> None:
        self.state: RouterState = EMPTY
        self.submitted: dict[str, TaskSubmitted] = {}

    def observe(self, event: Event) -> None:
        self.state = apply(self.state, event)
        if isinstance(event, TaskSubmitted):
            self.submitted[event.task_id] = event

    def next_decision(
        self, board: Board, *, only: Callable[[str], bool] | None = None
    ) -> EventBase | None:
        """The next ``task_routed`` (or ``task_failed`` for an unroutable task), if any."""
        for task in ready_to_route(board):
            if only is not None and not only(task.task_id):
                continue
            submitted = self.submitted.get(task.task_id)
            if submitted is None:
                continue
            try:
                routed: TaskRouted = choose_route(self.state, submitted)
            except QueueFull:
                return None
            except NoRouteAvailable as exc:
                if _never_routable(self.state, submitted):
                    return TaskFailed(
                        task_id=task.task_id,
                        agent="",
                        attempt=task.attempt,
                        error=f"no configured model can serve it: {exc}",
                        retryable=False,
                    )
                continue  # a circuit is open or a server is down: wait
            return routed
        return None


def _never_routable(state: RouterState, task: TaskSubmitted) -> bool:
    """True when no profile has the capabilities the task needs (waiting will not help)."""
    from swarmlog.routing import estimate, features_of

    needed = estimate(features_of(task)).capabilities
    return not any(
        not p.capabilities or all(c in p.capabilities for c in needed)
        for p in state.config.profiles
    )
