"""Route ready tasks, one decision at a time (those that can be made at once are appended
together), each recorded as ``task_routed`` with its scores.

The decision is the router's pure ``choose_route`` over its replayable state. This module decides
*when* to ask: only tasks whose dependencies are done, higher-priority roles' tasks first
(``[agents.ROLE].priority``; ties keep submission order), never past the bounded queue
(``QueueFull`` means wait) nor past a role's ``max_concurrent`` (its further tasks wait), and a
task no configured model could ever serve fails at once with the reason.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from swarmlog.errors import NoRouteAvailable, QueueFull
from swarmlog.events import (
    CircuitClosed,
    CircuitOpened,
    Event,
    EventBase,
    ModelCallFinished,
    TaskFailed,
    TaskRouted,
    TaskSubmitted,
    kind_of,
)
from swarmlog.routing import EMPTY, RouterState, apply, breaker, choose_route
from swarmlog.routing.limits import role_full
from swarmlog.routing.roles import never_routable
from swarmlog.runtime.board import Board, TaskView, apply_board, ready_to_route

__all__ = ["Dispatcher", "route_order"]


class Dispatcher:
    """Keep the router's state folded; propose the next routing decision."""

    def __init__(self) -> None:
        self.state: RouterState = EMPTY
        self.submitted: dict[str, TaskSubmitted] = {}
        self._verdicts: dict[str, str] = {}  # model -> breaker verdict appended, not yet folded

    def observe(self, event: Event) -> None:
        self.state = apply(self.state, event)
        if isinstance(event, CircuitOpened | CircuitClosed):
            self._verdicts.pop(event.target, None)
        if isinstance(event, TaskSubmitted):
            self.submitted[event.task_id] = event

    def next_decision(
        self, board: Board, *, only: Callable[[str], bool] | None = None
    ) -> EventBase | None:
        """The next ``task_routed`` (or ``task_failed`` for an unroutable task), if any."""
        state = self.state
        for task in route_order(state, ready_to_route(board)):
            if only is not None and not only(task.task_id):
                continue
            submitted = self.submitted.get(task.task_id)
            if submitted is None:
                continue
            if state.roles and role_full(state, task.role) is not None:
                continue  # the role's max_concurrent: it waits for one of its tasks to finish
            try:
                routed: TaskRouted = choose_route(self.state, submitted)
            except QueueFull:
                return None
            except NoRouteAvailable as exc:
                if never_routable(self.state, submitted):
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

    def decisions(
        self,
        board: Board,
        *,
        after_seq: int,
        ts: float,
        only: Callable[[str], bool] | None = None,
        limit: int = 64,
    ) -> list[EventBase]:
        """Every routing decision that can be made now, to be appended together after
        ``after_seq`` with time ``ts``: each is made on the state that includes the ones before
        it as they will be stored, so ``replay --verify`` re-derives every one of them."""
        saved = self.state
        out: list[EventBase] = []
        seen: set[str] = set()
        try:
            while len(out) < limit:
                decision = self.next_decision(board, only=only)
                task_id = getattr(decision, "task_id", "")
                if decision is None or task_id in seen:
                    break
                seen.add(task_id)
                decision = msgspec.structs.replace(decision, seq=after_seq + len(out) + 1, ts=ts)
                out.append(decision)
                board = apply_board(board, decision)  # type: ignore[arg-type]
                self.state = apply(self.state, decision)
        finally:
            self.state = saved
        return out

    def circuit_decision(self, call: ModelCallFinished, run: str) -> list[EventBase]:
        """The model breaker's verdict on a call already folded (opens or closes a circuit)."""
        circuit = self.state.circuits.get(call.model)
        if circuit is None:
            return []
        verdict = breaker.decide(circuit, call, model=call.model)
        if verdict is None or self._verdicts.get(call.model) == kind_of(verdict):
            return []
        self._verdicts[call.model] = kind_of(verdict)
        return [msgspec.structs.replace(verdict, key=f"circuit:{run}:{call.model}:{call.seq}")]


def route_order(state: RouterState, ready: list[TaskView]) -> list[TaskView]:
    """Ready tasks in the order they are routed: by their role's priority, highest first; a
    stable sort, so tasks of equal priority keep submission order."""
    roles = state.config.roles
    if not roles or len(ready) < 2:
        return ready
    return sorted(ready, key=lambda t: state.config.rank(t.role))
