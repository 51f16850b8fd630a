"""A circuit breaker per model, as a pure fold plus a decision that yields the events to append.

State changes only through ``circuit_opened`` / ``circuit_closed`` events, so a replay reaches
the same circuits. ``decide`` looks at a folded call outcome and says whether to open or close.
Rules: open after ≥ 5 calls in the window with more than half failing, or at once on 401/403/404;
429/503 with ``Retry-After`` open until that time; an open circuit lets one probe through once its
back-off (doubling from 5 s up to 5 min) has passed; a successful probe closes it.
"""

from __future__ import annotations

import msgspec

from swarmlog.events import CircuitClosed, CircuitOpened, ModelCallFinished

__all__ = [
    "BACKOFF_BASE_S",
    "BACKOFF_MAX_S",
    "FAILURE_OUTCOMES",
    "MIN_CALLS",
    "WINDOW_CALLS",
    "WINDOW_S",
    "Circuit",
    "admits",
    "backoff_s",
    "decide",
    "fold_call",
    "fold_closed",
    "fold_opened",
    "fold_routed",
]

WINDOW_S = 120.0
WINDOW_CALLS = 20
MIN_CALLS = 5
BACKOFF_BASE_S = 5.0
BACKOFF_MAX_S = 300.0
FAILURE_OUTCOMES = frozenset({"error", "timeout", "rejected"})
_FATAL_STATUS = frozenset({401, 403, 404})
_RETRY_STATUS = frozenset({429, 503, 529})


class Circuit(msgspec.Struct, frozen=True, kw_only=True):
    """One model's breaker: ``closed`` or ``open`` (half-open is open past ``retry_at``)."""

    state: str = "closed"
    retry_at: float = 0.0
    opens: int = 0  # consecutive openings since the last close; drives the back-off
    window: tuple[tuple[float, bool], ...] = ()  # (event time, failed)
    probe_task: str = ""


CLOSED = Circuit()


def backoff_s(opens: int) -> float:
    """Return the back-off before the next probe after ``opens`` consecutive openings."""
    return min(BACKOFF_BASE_S * 2.0 ** max(opens, 0), BACKOFF_MAX_S)


def fold_call(c: Circuit, call: ModelCallFinished) -> Circuit:
    """Add one call outcome to the window; a finished probe frees the probe slot."""
    failed = call.outcome in FAILURE_OUTCOMES
    horizon = call.ts - WINDOW_S
    window = tuple(w for w in c.window if w[0] >= horizon)[-(WINDOW_CALLS - 1) :]
    probe = "" if call.task_id and call.task_id == c.probe_task else c.probe_task
    return msgspec.structs.replace(c, window=(*window, (call.ts, failed)), probe_task=probe)


def fold_opened(c: Circuit, ev: CircuitOpened) -> Circuit:
    """Apply a ``circuit_opened`` decision."""
    return msgspec.structs.replace(
        c, state="open", retry_at=ev.retry_at, opens=c.opens + 1, probe_task=""
    )


def fold_closed(c: Circuit, ev: CircuitClosed) -> Circuit:
    """Apply a ``circuit_closed`` decision."""
    return CLOSED


def fold_routed(c: Circuit, task_id: str, now: float) -> Circuit:
    """Record that a task went to this model: while open, it is the one half-open probe."""
    if c.state == "open" and now >= c.retry_at and not c.probe_task:
        return msgspec.structs.replace(c, probe_task=task_id)
    return c


def admits(c: Circuit, now: float) -> tuple[bool, str]:
    """Say whether a task may go to this model now, and why."""
    if c.state == "closed":
        return True, ""
    if now < c.retry_at:
        return False, f"circuit open until t={c.retry_at:.3f}"
    if c.probe_task:
        return False, f"circuit half-open; probe {c.probe_task} in flight"
    return True, "circuit half-open: this task is the probe"


def decide(
    c: Circuit, call: ModelCallFinished, *, model: str
) -> CircuitOpened | CircuitClosed | None:
    """Return the breaker event a folded call outcome calls for, or None.

    ``c`` is the circuit after ``fold_call(…, call)``.
    """
    now = call.ts
    if call.outcome not in FAILURE_OUTCOMES:
        if c.state == "open":
            return CircuitClosed(target=model, reason=f"probe call succeeded (task {call.task_id})")
        return None
    if c.state == "open":
        if now < c.retry_at:
            return None  # a call sent before the circuit opened; it changes nothing
        wait = backoff_s(c.opens)
        return CircuitOpened(
            target=model,
            reason=f"half-open probe failed ({call.outcome} {call.http_status or ''})".strip(),
            failures=sum(1 for _, f in c.window if f),
            retry_at=now + wait,
        )
    failures = sum(1 for _, f in c.window if f)
    if call.http_status in _FATAL_STATUS:
        return CircuitOpened(
            target=model,
            reason=f"HTTP {call.http_status}: the endpoint or model is wrong; fix the config",
            failures=failures,
            retry_at=now + backoff_s(c.opens),
        )
    if call.http_status in _RETRY_STATUS and call.retry_after_s > 0:
        return CircuitOpened(
            target=model,
            reason=f"HTTP {call.http_status} with Retry-After {call.retry_after_s:g}s",
            failures=failures,
            retry_at=now + call.retry_after_s,
        )
    calls = len(c.window)
    if calls >= MIN_CALLS and failures * 2 > calls:
        return CircuitOpened(
            target=model,
            reason=f"{failures} of the last {calls} calls failed",
            failures=failures,
            retry_at=now + backoff_s(c.opens),
        )
    return None
