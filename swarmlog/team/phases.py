"""The phase plan (guide §2): Planning, Execution, Review, Iteration, and the fold that tracks them.

Planning runs Director → Architect → Scout one after another; Execution runs Builder and Scout at
once, bounded by ``max_concurrent``; Review runs Refactorer → Inspector → Director (verify);
Iteration sends the team back to Execution or Review, at most ``max_iterations`` times. Which
phase comes next is a pure function of the phase events already in the log.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import msgspec
from msgspec.structs import replace

from swarmlog.errors import ProtocolViolation
from swarmlog.events import Event, PhaseCompleted, PhaseEntered
from swarmlog.team.settings import DEFAULT_SETTINGS, PHASES, TeamSettings

__all__ = [
    "EMPTY",
    "REVISE_OUTCOMES",
    "PhasePlan",
    "PhaseRecord",
    "PhaseState",
    "Step",
    "apply",
    "complete_phase",
    "force_proceed",
    "is_overdue",
    "iterations_left",
    "next_phase",
    "overdue_s",
    "phase_plan",
    "project",
]

# A review that completes with one of these outcomes sends the team into an iteration.
REVISE_OUTCOMES: frozenset[str] = frozenset(
    {"revise", "request_changes", "changes_requested", "reject", "rejected"}
)
# An iteration that completes with this outcome goes back to review; anything else to execution.
_BACK_TO_REVIEW = "review"


class Step(msgspec.Struct, frozen=True, kw_only=True):
    """One role's turn in a phase."""

    role: str
    action: str


class PhasePlan(msgspec.Struct, frozen=True, kw_only=True):
    """How a phase runs: its steps, and whether they run one after another or at once."""

    phase: str
    mode: str  # sequential or parallel
    steps: tuple[Step, ...]
    max_parallel: int = 1


def phase_plan(phase: str, settings: TeamSettings = DEFAULT_SETTINGS) -> PhasePlan:
    """Return the seed's plan for one phase."""
    match phase:
        case "planning":
            steps: tuple[Step, ...] = (
                Step(role="director", action="plan"),
                Step(role="architect", action="design"),
                Step(role="scout", action="research"),
            )
            return PhasePlan(phase=phase, mode="sequential", steps=steps)
        case "execution":
            steps = (
                Step(role="builder", action="implement"),
                Step(role="scout", action="research"),
            )
            return PhasePlan(
                phase=phase,
                mode="parallel",
                steps=steps,
                max_parallel=settings.phases.max_concurrent,
            )
        case "review":
            steps = (
                Step(role="refactorer", action="review_quality"),
                Step(role="inspector", action="review_bugs"),
                Step(role="director", action="verify"),
            )
            return PhasePlan(phase=phase, mode="sequential", steps=steps)
        case "iteration":
            steps = (Step(role="director", action="choose_execution_or_review"),)
            return PhasePlan(phase=phase, mode="sequential", steps=steps)
    raise ProtocolViolation(f"unknown phase {phase!r}; phases are {', '.join(PHASES)}")


# The fold


class PhaseRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One pass through a phase."""

    phase: str
    iteration: int
    entered_seq: int
    entered_ts: float
    expected_s: float = 0.0
    completed_seq: int = 0
    completed_ts: float = 0.0
    outcome: str = ""


class PhaseState(msgspec.Struct, frozen=True, kw_only=True):
    """Where the team is: the active phase (``current``, empty between phases) and its history."""

    seq: int = 0
    current: str = ""
    iteration: int = 0
    history: tuple[PhaseRecord, ...] = ()

    @property
    def last(self) -> PhaseRecord | None:
        """The latest phase entered, active or completed."""
        return self.history[-1] if self.history else None

    @property
    def is_active(self) -> bool:
        return bool(self.current)


EMPTY = PhaseState()


def apply(state: PhaseState, event: Event) -> PhaseState:
    """Fold one event into the phase state."""
    match event:
        case PhaseEntered(phase=phase, iteration=iteration):
            record = PhaseRecord(
                phase=phase,
                iteration=iteration,
                entered_seq=event.seq,
                entered_ts=event.ts,
                expected_s=event.expected_s,
            )
            return replace(
                state,
                seq=event.seq,
                current=phase,
                iteration=iteration,
                history=(*state.history, record),
            )
        case PhaseCompleted(phase=phase, outcome=outcome):
            last = state.last
            if last is None or last.phase != phase or last.completed_seq:
                return replace(state, seq=event.seq)  # a stray completion changes nothing
            done = replace(last, completed_seq=event.seq, completed_ts=event.ts, outcome=outcome)
            return replace(state, seq=event.seq, current="", history=(*state.history[:-1], done))
    return replace(state, seq=event.seq)


def project(events: Iterable[Event], state: PhaseState = EMPTY) -> PhaseState:
    """Fold events into ``state``; resuming from a state equals replaying from the start."""
    return functools.reduce(apply, events, state)


# Transitions


def iterations_left(state: PhaseState, settings: TeamSettings = DEFAULT_SETTINGS) -> int:
    """Return how many more times the team may enter the iteration phase."""
    return max(0, settings.phases.max_iterations - state.iteration)


def next_phase(state: PhaseState, settings: TeamSettings = DEFAULT_SETTINGS) -> PhaseEntered | None:
    """Return the event that enters the next phase, or None when the team's work is finished.

    Planning → Execution → Review. A review that completes with a revise outcome
    (``REVISE_OUTCOMES``) leads to Iteration while iterations are left, otherwise the work is
    finished. An iteration completed with outcome ``review`` goes back to Review, any other
    outcome back to Execution.

    Raises:
        ProtocolViolation: a phase is still active; complete it first.
    """
    if state.current:
        raise ProtocolViolation(
            f"phase {state.current!r} is still active; append phase_completed before entering "
            f"the next phase"
        )
    last = state.last
    if last is None:
        return _enter("planning", 0, "the run starts with planning", settings)
    match last.phase:
        case "planning":
            return _enter("execution", state.iteration, "planning completed", settings)
        case "execution":
            return _enter("review", state.iteration, "execution completed", settings)
        case "review":
            if last.outcome not in REVISE_OUTCOMES or not iterations_left(state, settings):
                return None
            reason = f"review outcome {last.outcome!r}"
            return _enter("iteration", state.iteration + 1, reason, settings)
        case "iteration":
            target = "review" if last.outcome == _BACK_TO_REVIEW else "execution"
            return _enter(target, state.iteration, f"iteration chose {target}", settings)
    raise ProtocolViolation(f"unknown phase {last.phase!r} in the log; phases are {PHASES}")


def _enter(phase: str, iteration: int, reason: str, settings: TeamSettings) -> PhaseEntered:
    return PhaseEntered(
        phase=phase,
        iteration=iteration,
        expected_s=settings.phases.expected_s.get(phase, 0.0),
        reason=reason,
    )


def complete_phase(state: PhaseState, outcome: str = "done", reason: str = "") -> PhaseCompleted:
    """Return the event that completes the active phase.

    Raises:
        ProtocolViolation: no phase is active.
    """
    last = state.last
    if not state.current or last is None:
        raise ProtocolViolation("no phase is active; append phase_entered first")
    return PhaseCompleted(
        phase=state.current, iteration=last.iteration, outcome=outcome, reason=reason
    )


def force_proceed(state: PhaseState, reason: str) -> PhaseCompleted:
    """Return the Director's forced completion of a stalled phase (guide §10: force-proceed)."""
    return complete_phase(state, outcome="forced", reason=reason)


def overdue_s(state: PhaseState, now: float, settings: TeamSettings = DEFAULT_SETTINGS) -> float:
    """Return the seconds the active phase has run past expected * overdue_factor (<= 0: not)."""
    last = state.last
    if not state.current or last is None:
        return 0.0
    expected = last.expected_s or settings.phases.expected_s.get(last.phase, 0.0)
    if expected <= 0:
        return 0.0
    return (now - last.entered_ts) - expected * settings.phases.overdue_factor


def is_overdue(state: PhaseState, now: float, settings: TeamSettings = DEFAULT_SETTINGS) -> bool:
    """Say whether the active phase has run longer than its expected duration times the factor."""
    return overdue_s(state, now, settings) > 0
