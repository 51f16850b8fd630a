"""Phase and run circuit breakers: halt processing of what failed a consistency check.

The seed's circuit breaker (§4) at two scopes (the per-model breaker is ``swarmlog.routing``'s):

- phase: a consistency check fails inside a phase (the Inspector's critical bugs, the Architect's
  fundamental flaw, agents contradicting each other, a phase overrun) → ``circuit_opened`` with
  scope ``phase`` and the phase as target; the phase's work halts until the Director mediates
  (``decision_made`` on a review), the phase is re-entered or completed, or the human resumes.
- run: an escalation reaches level 3 or more → ``circuit_opened`` with scope ``run``; nothing is
  processed until no level-3 escalation is open (``ack``/``resume``) — never after an abort.

A new run, the run's end, or the human's resume (unless aborted), releases every phase and run
circuit (``swarmlog.state.escalations.releases_circuits``, which the rendered blockers follow too);
records of a run that is over (another run's, or this run's after its end) change nothing.

``apply`` folds the log (idempotently for this module's own events); ``step`` also returns the
circuit events to append; ``is_halted`` answers the runtime's question.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from msgspec.structs import replace

from swarmlog.events import (
    CircuitClosed,
    CircuitOpened,
    DecisionMade,
    DetectorFired,
    EscalationRaised,
    EscalationResolved,
    Event,
    EventBase,
    HumanCommand,
    PhaseCompleted,
    PhaseEntered,
    RunEnded,
    RunStarted,
)
from swarmlog.state.escalations import elsewhere, releases_circuits

__all__ = [
    "CONSISTENCY_RULES",
    "EMPTY",
    "BreakerState",
    "OpenCircuit",
    "apply",
    "is_halted",
    "project",
    "step",
]

CONSISTENCY_RULES = frozenset({"critical_bugs", "architect_flaw", "conflict", "phase_overrun"})
Transition = CircuitOpened | CircuitClosed


class OpenCircuit(msgspec.Struct, frozen=True, kw_only=True):
    """A phase or run circuit that is open."""

    scope: str
    target: str
    reason: str = ""
    seq: int = 0


class BreakerState(msgspec.Struct, frozen=True, kw_only=True):
    """Open phase/run circuits, the phase in progress, and open escalation levels."""

    seq: int = 0
    run: str = ""
    phase: str = ""
    circuits: dict[str, OpenCircuit] = {}  # "scope:target" -> circuit
    levels: dict[str, int] = {}  # open escalation id -> level
    aborted: bool = False
    ended: bool = False  # the run's run_ended was folded (a run_started clears it)


EMPTY = BreakerState()


def _key(scope: str, target: str) -> str:
    return f"{scope}:{target}"


def apply(state: BreakerState, event: Event | EventBase) -> BreakerState:
    """Fold one event into the breaker state."""
    state = _apply(state, event)
    return replace(state, seq=max(state.seq, event.seq))


def _apply(state: BreakerState, event: Event | EventBase) -> BreakerState:
    if isinstance(event, RunStarted):
        if event.continues(state.run):
            return replace(state, ended=False) if state.ended else state
        return BreakerState(seq=state.seq, run=event.run)
    if state.ended or elsewhere(state.run, event):
        return state  # a record of a run that is over (see swarmlog.state.escalations)
    if releases_circuits(state.run, state.aborted, event):
        # Effective when folded; the circuit_closed events that follow only record it.
        state = replace(state, circuits={}) if state.circuits else state
        return replace(state, ended=True) if isinstance(event, RunEnded) else state
    match event:
        case PhaseEntered():
            return replace(state, phase=event.phase)
        case PhaseCompleted() if event.phase == state.phase:
            return replace(state, phase="")
        case EscalationRaised():
            aborted = state.aborted or event.level >= 4
            return replace(
                state, levels={**state.levels, event.escalation_id: event.level}, aborted=aborted
            )
        case EscalationResolved():
            levels = {k: v for k, v in state.levels.items() if k != event.escalation_id}
            return replace(state, levels=levels)
        case HumanCommand(command="abort"):
            return replace(state, aborted=True)
        case CircuitOpened(scope="phase" | "run"):
            circuit = OpenCircuit(
                scope=event.scope, target=event.target, reason=event.reason, seq=event.seq
            )
            key = _key(event.scope, event.target)
            if key in state.circuits:
                return state
            return replace(state, circuits={**state.circuits, key: circuit})
        case CircuitClosed(scope="phase" | "run"):
            key = _key(event.scope, event.target)
            return replace(state, circuits={k: v for k, v in state.circuits.items() if k != key})
    return state


def project(events: Iterable[Event], state: BreakerState = EMPTY) -> BreakerState:
    """Fold many events."""
    for event in events:
        state = apply(state, event)
    return state


def step(state: BreakerState, event: Event | EventBase) -> tuple[BreakerState, list[Transition]]:
    """Fold ``event``, decide which circuits open or close, fold those too; return both."""
    before = state
    state = apply(state, event)
    out = _react(before, state, event)
    if event.ts:  # stamp reactions with their trigger's time so a replay derives the same events
        out = [replace(e, ts=event.ts) for e in out]
    for transition in out:
        state = _apply(state, transition)
    return state, out


def _open(state: BreakerState, scope: str, target: str, reason: str, run: str) -> list[Transition]:
    if not target or _key(scope, target) in state.circuits:
        return []
    return [CircuitOpened(target=target, scope=scope, reason=reason, run=run, actor="monitor")]


def _close(state: BreakerState, scope: str, reason: str, run: str) -> list[Transition]:
    return [
        CircuitClosed(target=c.target, scope=scope, reason=reason, run=run, actor="monitor")
        for c in sorted(state.circuits.values(), key=lambda c: c.seq)
        if c.scope == scope
    ]


def _react(before: BreakerState, state: BreakerState, event: Event | EventBase) -> list[Transition]:
    if (before.ended or elsewhere(before.run, event)) and not isinstance(event, RunStarted):
        return []  # a run that is over opens and closes nothing in this one
    run = event.run or state.run
    match event:
        case DetectorFired() if event.detector in CONSISTENCY_RULES:
            return _open(state, "phase", state.phase, f"{event.detector}: {event.message}", run)
        case EscalationRaised() if event.level >= 3:
            reason = f"level {event.level} {event.rule}: {event.reason}"
            return _open(state, "run", run or "run", reason, run)
        case DecisionMade() if event.review_id:
            return _close(state, "phase", f"the Director decided {event.decision_id}", run)
        case PhaseEntered() | PhaseCompleted():
            stale = [
                c
                for c in before.circuits.values()
                if c.scope == "phase" and c.target == before.phase
            ]
            return [
                CircuitClosed(
                    target=c.target,
                    scope="phase",
                    reason="the phase moved on",
                    run=run,
                    actor="monitor",
                )
                for c in stale
            ]
        case HumanCommand(command="resume"):
            if state.aborted:
                return []
            return _close(before, "phase", "the human resumed", run) + _close(
                before, "run", "the human resumed", run
            )
        case EscalationResolved():
            if state.aborted or any(level >= 3 for level in state.levels.values()):
                return []
            return _close(state, "run", "no level-3 escalation remains open", run)
    return []


def is_halted(state: BreakerState, phase: str | None = None) -> bool:
    """Return whether work must halt: the run circuit is open, or ``phase``'s is."""
    if any(c.scope == "run" for c in state.circuits.values()):
        return True
    return phase is not None and _key("phase", phase) in state.circuits
