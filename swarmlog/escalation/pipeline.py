"""The monitor's whole pure reaction to one event: detectors, escalation levels, circuit breakers.

Each stage reads what the previous stage appended from the log, so every stage's state is a fold
of the log alone: ``react`` on an event returns the detector firings it caused, the escalation
reaction to it (when it is a firing, a decision or a human command) and the circuit transitions
(when it is a firing or an escalation). Append the returned events in order; when they come back
from the log, ``react`` folds them and reacts to them in turn (its own outputs are idempotent).

Each reaction carries an idempotency key naming the event it answers (``react:SEQ:N``): the
reaction to an event is a pure function of the log up to it, so a monitor that starts again (a
``--resume``, a restart, a crash) and re-folds the log re-derives the very same reactions, and
the log keeps the ones already stored instead of raising every escalation and alert again.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from msgspec.structs import replace

from swarmlog.escalation import breakers, detectors, levels
from swarmlog.escalation.settings import DEFAULT_ESCALATION, EscalationSettings
from swarmlog.events import Event, EventBase

__all__ = ["EMPTY", "EmergencyState", "project", "react"]


class EmergencyState(msgspec.Struct, frozen=True, kw_only=True):
    """The three folds the monitor keeps."""

    detectors: detectors.DetectorState = detectors.EMPTY
    escalation: levels.EscalationState = levels.EMPTY
    breakers: breakers.BreakerState = breakers.EMPTY

    @property
    def seq(self) -> int:
        """The last seq folded."""
        return max(self.detectors.seq, self.escalation.seq, self.breakers.seq)


EMPTY = EmergencyState()


def react(
    state: EmergencyState,
    event: Event,
    settings: EscalationSettings = DEFAULT_ESCALATION,
) -> tuple[EmergencyState, list[EventBase]]:
    """Fold one event from the log; return the new state and the events to append."""
    det, fired = detectors.observe(state.detectors, event, settings)
    esc, reaction = levels.step(state.escalation, event, settings)
    brk, circuits = breakers.step(state.breakers, event)
    out: list[EventBase] = [
        e if e.key else replace(e, key=f"react:{event.seq}:{n}")
        for n, e in enumerate([*fired, *reaction, *circuits])
    ]
    return replace(state, detectors=det, escalation=esc, breakers=brk), out


def project(
    events: Iterable[Event],
    state: EmergencyState = EMPTY,
    settings: EscalationSettings = DEFAULT_ESCALATION,
) -> EmergencyState:
    """Fold many events, discarding reactions (they are already in the log)."""
    for event in events:
        state, _ = react(state, event, settings)
    return state
