"""Which escalations are open, which alerts a human acknowledged, whether the team is paused or
aborted: the one escalation rule, shared by the monitor and every view.

The monitor (``swarmlog.escalation.levels``) decides what to append from this state and the team
obeys its ``directive``; the rendered state (``swarmlog.state``: ``status``, ``watch``,
``memory/*.md``, ``alerts/``) and ``swarmlog alerts`` show it. All of them fold the log through
``apply`` here, so they cannot disagree after a human acts, even when no monitor is running to
record what the human's command implies.

The rule, at each event's place in the log:

- ``escalation_raised`` opens an escalation, or raises an open one to a higher level (a raise to
  the same or a lower level changes nothing); level 4 aborts the run.
- ``escalation_resolved`` closes it. Its open alerts become acknowledged when ``by`` is ``human``,
  otherwise resolved: their cause is gone, but no human has acknowledged them yet.
- ``alert_raised`` records an open alert.
- The human's ``human_command`` takes effect when folded (the monitor's ``escalation_resolved``
  events that follow only record it): ``ack ID`` closes the escalation ID names (``E2``), or the
  alert's escalation (``A3``), or every open one (``all``), and acknowledges every alert not yet
  acknowledged that ID names or that belongs to an escalation it closed; ``resume`` closes every
  open escalation of level 3 or more (acknowledging their alerts) and un-pauses; ``pause`` pauses;
  ``abort`` aborts.
- the run's ``run_ended`` closes every open escalation ("ended with the run": their alerts become
  resolved, not acknowledged) and un-pauses; nothing of the run stays open. Until a ``run_started``
  its later records (a monitor's reaction to something before the end, stored after it) change
  nothing, as another run's do (``over``).
- a ``run_started`` that does not continue the run starts it at level 0: no open escalation, no
  pause, no abort. Alerts keep their status (an unacknowledged one still waits for a human).
- a ``detector_fired`` about an open escalation's subject counts one more firing (the monitor's
  failed recoveries).
- a firing, an escalation or a ``pause``/``resume``/``abort`` stamped with another run than the
  one in progress changes nothing (``elsewhere``): that run is over (an ``ack`` stamped so still
  acknowledges the alerts it names, and closes nothing). A new run's monitor, folding
  the log from the start, appends its reactions to the previous run's events again, after the new
  run_started; they must not escalate, pause or abort the new run.

The level is 4 once aborted, else the highest open escalation's, else 0. An emergency is open while
an escalation of level 2 or more is open or an alert of level 3 or more is not acknowledged.

``apply`` re-folding the monitor's own outputs is a no-op, so the monitor may fold them as it emits
them and again when it reads them back. Every function is pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import msgspec
from msgspec.structs import replace

from swarmlog.events import (
    AlertRaised,
    DetectorFired,
    EscalationRaised,
    EscalationResolved,
    Event,
    EventBase,
    HumanCommand,
    RunEnded,
    RunStarted,
)

__all__ = [
    "ACKED",
    "EMPTY_ESCALATIONS",
    "ENDED",
    "RESUMED",
    "AlertInfo",
    "Directive",
    "Escalations",
    "OpenEscalation",
    "ack_targets",
    "apply",
    "closing",
    "directive",
    "elsewhere",
    "emergency",
    "over",
    "project",
    "releases_circuits",
    "subject_of",
]

Directive = Literal["run", "paused", "waiting_for_human", "aborting"]

# Why the human's commands closed escalations (the monitor's escalation_resolved say the same).
ACKED = "acknowledged by the human"
RESUMED = "the human resumed the team"
ENDED = "ended with the run"

# What a detector's firing is about: the same subject firing again is a recurrence.
_SUBJECT_FIELD = {
    "stuck_calls": "agent",
    "same_error": "agent",
    "trust": "agent",
    "critical_bugs": "agent",
    "architect_flaw": "agent",
    "task_attempts": "task_id",
    "call_latency": "model",
    "offload": "model",
    "model_outage": "model",
    "emergency_message": "agent",
}


class OpenEscalation(msgspec.Struct, frozen=True, kw_only=True):
    """An escalation that has not been resolved."""

    escalation_id: str
    level: int
    rule: str
    subject: str = ""
    agent: str = ""
    task_id: str = ""
    reason: str = ""
    evidence: tuple[int, ...] = ()
    seq: int = 0
    firings: int = 1  # firings at the current level; the first one opened or raised it


class AlertInfo(msgspec.Struct, frozen=True, kw_only=True):
    """An alert raised during the run and what became of it."""

    alert_id: str
    level: int
    rule: str
    title: str
    escalation_id: str = ""
    seq: int = 0
    ts: float = 0.0
    run: str = ""
    status: str = "open"  # open, acked (by a human), resolved (its escalation, not by a human)
    closed_by: str = ""
    closed_seq: int = 0

    @property
    def acked(self) -> bool:
        """Whether a human acknowledged it (a resolved alert still waits for one)."""
        return self.status == "acked"


class Escalations(msgspec.Struct, frozen=True, kw_only=True):
    """The escalation rule's state: open escalations, every alert, the human's pause and abort."""

    seq: int = 0
    run: str = ""
    open: dict[str, OpenEscalation] = {}
    by_subject: dict[str, str] = {}  # detector:subject -> escalation id
    alerts: dict[str, AlertInfo] = {}
    next_escalation: int = 1
    next_alert: int = 1
    paused: bool = False
    aborted: bool = False
    ended: bool = False  # the run's run_ended was folded (a run_started clears it)

    @property
    def level(self) -> int:
        """The current level: 4 once aborted, else the highest open escalation, else 0."""
        if self.aborted:
            return 4
        return max((e.level for e in self.open.values()), default=0)


EMPTY_ESCALATIONS = Escalations()


def subject_of(fired: DetectorFired) -> str:
    """Return the key under which a firing's recurrences are counted."""
    field = _SUBJECT_FIELD.get(fired.detector, "")
    value = str(getattr(fired, field)) if field else ""
    return f"{fired.detector}:{value}"


def _number(ident: str) -> int:
    digits = ident[1:]
    return int(digits) if digits.isdigit() else 0


def apply(state: Escalations, event: Event | EventBase) -> Escalations:
    """Fold one event into the escalation state."""
    state = fold_one(state, event)
    return replace(state, seq=max(state.seq, event.seq))


def elsewhere(run: str, event: Event | EventBase) -> bool:
    """Whether ``event`` names another run than ``run``, the one in progress (both known)."""
    return bool(run and event.run and event.run != run)


def over(state: Escalations, event: Event | EventBase) -> bool:
    """Whether ``event`` is a record of a run that is over: another run's than the one in
    progress, or any after the run's ``run_ended`` (until the next ``run_started``)."""
    return state.ended or elsewhere(state.run, event)


def fold_one(state: Escalations, event: Event | EventBase) -> Escalations:
    """``apply`` without advancing ``seq`` (for the monitor's reactions, folded as emitted)."""
    other = over(state, event)  # a record of a run that is over
    match event:
        case RunStarted() if not event.continues(state.run):
            return replace(
                state,
                run=event.run,
                open={},
                by_subject={},
                paused=False,
                aborted=False,
                ended=False,
            )
        case RunStarted():
            return replace(state, ended=False) if state.ended else state
        case RunEnded() if not other:
            for done in sorted(state.open, key=lambda k: state.open[k].seq):
                state = _close(state, done, "", event.seq, False)
            return replace(state, paused=False, ended=True)
        case EscalationRaised() if other:  # opens nothing; its id stays taken
            nxt = max(state.next_escalation, _number(event.escalation_id) + 1)
            return state if nxt == state.next_escalation else replace(state, next_escalation=nxt)
        case DetectorFired() | HumanCommand(command="pause" | "resume" | "abort") if other:
            return state
        case DetectorFired():
            eid = state.by_subject.get(subject_of(event))
            if eid is None or eid not in state.open:
                return state
            esc = state.open[eid]
            return replace(state, open={**state.open, eid: replace(esc, firings=esc.firings + 1)})
        case EscalationRaised():
            return _raised(state, event)
        case EscalationResolved():
            return _close(state, event.escalation_id, event.by, event.seq, event.by == "human")
        case AlertRaised():
            return _alert(state, event)
        case HumanCommand(command="pause"):
            return state if state.paused else replace(state, paused=True)
        case HumanCommand(command="resume"):
            by = _resumer(event)
            for eid in [e for e, esc in state.open.items() if esc.level >= 3]:
                state = _close(state, eid, by, event.seq, by == "human")
            return replace(state, paused=False) if state.paused else state
        case HumanCommand(command="abort"):
            return state if state.aborted else replace(state, aborted=True)
        case HumanCommand(command="ack"):
            target = event.target
            for eid in [] if other else ack_targets(state, target):  # alerts only, if other
                state = _close(state, eid, "human", event.seq, True)
            named = [
                a
                for a in state.alerts.values()
                if a.status != "acked" and target in ("", "all", a.alert_id, a.escalation_id)
            ]
            if not named:
                return state
            alerts = dict(state.alerts)
            for a in named:
                alerts[a.alert_id] = replace(
                    a, status="acked", closed_by="human", closed_seq=event.seq
                )
            return replace(state, alerts=alerts)
    return state


def _raised(state: Escalations, event: EscalationRaised) -> Escalations:
    if event.level >= 4 and not state.aborted:
        state = replace(state, aborted=True)
    nxt = max(state.next_escalation, _number(event.escalation_id) + 1)
    prior = state.open.get(event.escalation_id)
    if prior is not None and prior.level >= event.level:
        if not prior.seq and event.seq:  # the monitor's own output, read back from the log
            prior = replace(prior, seq=event.seq)
            state = replace(state, open={**state.open, event.escalation_id: prior})
        return state if nxt == state.next_escalation else replace(state, next_escalation=nxt)
    subject = event.subject or f"{event.rule}:{event.escalation_id}"
    raised = OpenEscalation(
        escalation_id=event.escalation_id,
        level=event.level,
        rule=event.rule,
        subject=prior.subject if prior else subject,
        agent=event.agent,
        task_id=event.task_id,
        reason=event.reason,
        evidence=event.evidence,
        seq=prior.seq if prior and prior.seq else event.seq,
    )
    return replace(
        state,
        open={**state.open, event.escalation_id: raised},
        by_subject={**state.by_subject, raised.subject: event.escalation_id},
        next_escalation=nxt,
    )


def _alert(state: Escalations, event: AlertRaised) -> Escalations:
    nxt = max(state.next_alert, _number(event.alert_id) + 1)
    prior = state.alerts.get(event.alert_id)
    if prior is not None:
        if not prior.seq and event.seq:  # the monitor's own output, read back from the log
            prior = replace(prior, seq=event.seq, ts=event.ts)
            state = replace(state, alerts={**state.alerts, event.alert_id: prior})
        return state if nxt == state.next_alert else replace(state, next_alert=nxt)
    info = AlertInfo(
        alert_id=event.alert_id,
        level=event.level,
        rule=event.rule,
        title=event.title,
        escalation_id=event.escalation_id,
        seq=event.seq,
        ts=event.ts,
        run=event.run,
    )
    return replace(state, alerts={**state.alerts, event.alert_id: info}, next_alert=nxt)


def _resumer(event: HumanCommand) -> str:
    """Who resumed: the human, or the supervisor when 'swarmlog run --resume' restarted a team
    waiting at level 3 (its alerts are then released but still wait for a human's ack)."""
    return "supervisor" if event.actor == "supervisor" else "human"


def _close(state: Escalations, eid: str, by: str, seq: int, acked: bool) -> Escalations:
    if eid not in state.open:
        return state
    status = "acked" if acked else "resolved"
    alerts = {
        a.alert_id: replace(a, status=status, closed_by=by, closed_seq=seq)
        if a.escalation_id == eid and a.status == "open"
        else a
        for a in state.alerts.values()
    }
    return replace(
        state,
        open={k: v for k, v in state.open.items() if k != eid},
        by_subject={k: v for k, v in state.by_subject.items() if v != eid},
        alerts=alerts,
    )


def project(
    events: Iterable[Event | EventBase], state: Escalations = EMPTY_ESCALATIONS
) -> Escalations:
    """Fold many events."""
    for event in events:
        state = apply(state, event)
    return state


def ack_targets(state: Escalations, target: str) -> list[str]:
    """The open escalations ``ack TARGET`` closes, oldest first."""
    if target in ("", "all"):
        return sorted(state.open, key=lambda k: state.open[k].seq)
    if target in state.open:
        return [target]
    alert = state.alerts.get(target)
    if alert is not None and alert.escalation_id in state.open:
        return [alert.escalation_id]
    return []


def closing(event: Event | EventBase) -> tuple[str, str]:
    """Who closed the escalations ``event`` closed, and why: ``(by, resolution)``."""
    match event:
        case EscalationResolved():
            return event.by, event.resolution
        case HumanCommand(command="ack"):
            return "human", ACKED
        case HumanCommand(command="resume"):
            return _resumer(event), RESUMED
        case RunStarted():
            return "", f"still open when run {event.run} started"
        case RunEnded():
            return "", ENDED
    return "", ""


def releases_circuits(run: str, aborted: bool, event: Event | EventBase) -> bool:
    """Whether ``event`` releases every phase and run circuit (``swarmlog.escalation.breakers``):
    a run_started that does not continue ``run``, the run's run_ended, or the human's resume of it
    unless aborted."""
    if isinstance(event, RunStarted):
        return not event.continues(run)
    if isinstance(event, RunEnded):
        return not elsewhere(run, event)
    return (
        isinstance(event, HumanCommand)
        and event.command == "resume"
        and not aborted
        and not elsewhere(run, event)
    )


def directive(state: Escalations) -> Directive:
    """What the team must do now: run, stay paused, wait for a human, or shut down."""
    if state.aborted:
        return "aborting"
    if state.paused:
        return "paused"
    if any(e.level >= 3 for e in state.open.values()):
        return "waiting_for_human"
    return "run"


def emergency(state: Escalations) -> bool:
    """Whether an emergency is open: an escalation of level 2 or more is open, or an alert of
    level 3 or more is not acknowledged."""
    return any(e.level >= 2 for e in state.open.values()) or any(
        a.level >= 3 and a.status != "acked" for a in state.alerts.values()
    )
