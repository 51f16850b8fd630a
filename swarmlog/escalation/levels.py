"""Escalation levels 0-4 (seed §4): what the team does about a detector firing or a human command.

Levels: 0 normal; 1 agent-level (the Director reassigns the task or the supervisor restarts the
agent; work continues); 2 coordination (emergency meeting: other agents pause, the Director
mediates, the phase may restart); 3 system (all agents pause, Scribe writes a full state dump, the
Director writes a summary, the team waits for a human); 4 abort (graceful shutdown, state kept).

Rules: an open escalation whose detector fires again is a failed recovery; after
``recovery_attempts`` of them it rises one level (1 → 2 → 3). A firing with a higher level than the
open escalation (runaway's second stage) raises it at once. No consensus (``decision_made`` by
``max_rounds`` with controversy or dissent), an irreversible decision and an exceeded budget go to
the human (level 3). ``ack`` resolves, ``resume`` resolves every level-3 escalation and un-pauses,
``abort`` raises level 4.

``apply`` folds the log into ``EscalationState`` (re-folding this module's own outputs is a no-op,
so a runtime may fold them as it emits them and again when it reads them back); ``step`` folds one
event and returns the events to append; ``team_directive`` tells the runtime what to do now.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import msgspec
from msgspec.structs import replace

from swarmlog.escalation.settings import DEFAULT_ESCALATION, EscalationSettings
from swarmlog.events import (
    AlertRaised,
    DecisionMade,
    DetectorFired,
    EscalationRaised,
    EscalationResolved,
    Event,
    EventBase,
    HumanCommand,
    RunStarted,
    kind_of,
)

__all__ = [
    "EMPTY",
    "LEVEL_ACTIONS",
    "AlertInfo",
    "Directive",
    "EscalationState",
    "OpenEscalation",
    "alert_line",
    "apply",
    "escalate",
    "project",
    "step",
    "subject_of",
    "team_directive",
]

Directive = Literal["run", "paused", "waiting_for_human", "aborting"]
Reaction = EscalationRaised | EscalationResolved | AlertRaised

LEVEL_ACTIONS: dict[int, tuple[str, ...]] = {
    1: (
        "The Director reassigns the task or the supervisor restarts the agent.",
        "The rest of the team keeps working.",
    ),
    2: (
        "Emergency meeting: the other agents pause and the Director mediates.",
        "The phase may be restarted.",
    ),
    3: (
        "All agents are paused.",
        "Scribe writes a full state dump and the Director a human-readable summary.",
        "The team waits for a human.",
    ),
    4: ("Graceful shutdown: agents stop after their current step.", "The log keeps all state."),
}

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
    status: str = "open"  # open, acked, resolved
    closed_by: str = ""
    closed_seq: int = 0


class EscalationState(msgspec.Struct, frozen=True, kw_only=True):
    """The escalation fold: open escalations, alerts, the human's pause/abort."""

    seq: int = 0
    run: str = ""
    open: dict[str, OpenEscalation] = {}
    by_subject: dict[str, str] = {}  # detector:subject -> escalation id
    alerts: dict[str, AlertInfo] = {}
    next_escalation: int = 1
    next_alert: int = 1
    paused: bool = False
    aborted: bool = False

    @property
    def level(self) -> int:
        """The current level: 4 once aborted, else the highest open escalation, else 0."""
        if self.aborted:
            return 4
        return max((e.level for e in self.open.values()), default=0)


EMPTY = EscalationState()


def subject_of(fired: DetectorFired) -> str:
    """Return the key under which a firing's recurrences are counted."""
    field = _SUBJECT_FIELD.get(fired.detector, "")
    value = str(getattr(fired, field)) if field else ""
    return f"{fired.detector}:{value}"


def _number(ident: str) -> int:
    digits = ident[1:]
    return int(digits) if digits.isdigit() else 0


# Fold


def apply(state: EscalationState, event: Event | EventBase) -> EscalationState:
    """Fold one event into the escalation state."""
    state = _apply(state, event)
    return replace(state, seq=max(state.seq, event.seq))


def _apply(state: EscalationState, event: Event | EventBase) -> EscalationState:
    match event:
        case RunStarted() if not event.continues(state.run):
            return replace(
                state, run=event.run, open={}, by_subject={}, paused=False, aborted=False
            )
        case DetectorFired():
            eid = state.by_subject.get(subject_of(event))
            if eid is None or eid not in state.open:
                return state
            esc = state.open[eid]
            return replace(state, open={**state.open, eid: replace(esc, firings=esc.firings + 1)})
        case EscalationRaised():
            if event.level >= 4:
                state = replace(state, aborted=True)
            nxt = max(state.next_escalation, _number(event.escalation_id) + 1)
            prior = state.open.get(event.escalation_id)
            if prior is not None and prior.level >= event.level:
                if not prior.seq and event.seq:  # our own output, read back from the log
                    prior = replace(prior, seq=event.seq)
                    state = replace(state, open={**state.open, event.escalation_id: prior})
                return replace(state, next_escalation=nxt)
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
            by_subject = {**state.by_subject, raised.subject: event.escalation_id}
            return replace(
                state,
                open={**state.open, event.escalation_id: raised},
                by_subject=by_subject,
                next_escalation=nxt,
            )
        case EscalationResolved():
            return _close(state, event.escalation_id, event.by, event.seq)
        case AlertRaised():
            nxt = max(state.next_alert, _number(event.alert_id) + 1)
            prior_alert = state.alerts.get(event.alert_id)
            if prior_alert is not None:
                if not prior_alert.seq and event.seq:  # our own output, read back from the log
                    prior_alert = replace(prior_alert, seq=event.seq, ts=event.ts)
                    state = replace(state, alerts={**state.alerts, event.alert_id: prior_alert})
                return replace(state, next_alert=nxt)
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
        case HumanCommand(command="pause"):
            return replace(state, paused=True)
        case HumanCommand(command="resume"):
            # The human's word takes effect when the fold sees it; the monitor's
            # escalation_resolved events that follow only record it.
            for eid in [e for e, esc in state.open.items() if esc.level >= 3]:
                state = _close(state, eid, "human", event.seq)
            return replace(state, paused=False)
        case HumanCommand(command="abort"):
            return replace(state, aborted=True)
        case HumanCommand(command="ack"):
            target = event.target
            for eid in _ack_targets(state, target):
                state = _close(state, eid, "human", event.seq)
            alerts = {
                a.alert_id: replace(a, status="acked", closed_by="human", closed_seq=event.seq)
                if a.status == "open" and target in ("", "all", a.alert_id, a.escalation_id)
                else a
                for a in state.alerts.values()
            }
            return replace(state, alerts=alerts)
    return state


def _close(state: EscalationState, eid: str, by: str, seq: int) -> EscalationState:
    if eid not in state.open:
        return state
    status = "acked" if by == "human" else "resolved"
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


def project(events: Iterable[Event], state: EscalationState = EMPTY) -> EscalationState:
    """Fold many events."""
    for event in events:
        state = apply(state, event)
    return state


# Reactions


def step(
    state: EscalationState,
    event: Event | EventBase,
    settings: EscalationSettings = DEFAULT_ESCALATION,
) -> tuple[EscalationState, list[Reaction]]:
    """Fold ``event``, decide the reaction, and fold the reaction too; return both."""
    before = state
    state = apply(state, event)
    out = _react(before, state, event, settings)
    if event.ts:  # stamp reactions with their trigger's time so a replay derives the same events
        out = [replace(e, ts=event.ts) for e in out]
    for reaction in out:
        state = _apply(state, reaction)
    return state, out


def escalate(
    state: EscalationState,
    event: Event | EventBase,
    settings: EscalationSettings = DEFAULT_ESCALATION,
) -> list[Reaction]:
    """Return the events to append in reaction to ``event`` (``state`` is the fold before it)."""
    return step(state, event, settings)[1]


def _react(
    before: EscalationState,
    state: EscalationState,
    event: Event | EventBase,
    settings: EscalationSettings,
) -> list[Reaction]:
    if before.aborted and not isinstance(event, RunStarted):
        return []
    match event:
        case DetectorFired():
            return _on_fired(state, event, settings)
        case DecisionMade():
            out: list[Reaction] = []
            if event.rule == "max_rounds" and (event.controversy or event.dissent):
                why = event.controversy or f"dissent from {', '.join(event.dissent)}"
                out += _raise_new(
                    state,
                    3,
                    "no_consensus",
                    f"no consensus on {event.subject!r} after the maximum rounds: {why}",
                    f"no_consensus:{event.decision_id}",
                    evidence=(event.seq,),
                    run=event.run,
                    settings=settings,
                )
                state = _fold_all(state, out)
            if event.irreversible:
                out += _raise_new(
                    state,
                    3,
                    "irreversible_action",
                    f"decision {event.decision_id} on {event.subject!r} cannot be undone "
                    f"({event.outcome}); a human must confirm",
                    f"irreversible_action:{event.decision_id}",
                    evidence=(event.seq,),
                    run=event.run,
                    settings=settings,
                )
            return out
        case HumanCommand(command="ack"):
            targets = _ack_targets(before, event.target)
            return [_resolve(eid, "acknowledged by the human", event) for eid in targets]
        case HumanCommand(command="resume"):
            return [
                _resolve(e.escalation_id, "the human resumed the team", event)
                for e in sorted(before.open.values(), key=lambda e: e.seq)
                if e.level >= 3
            ]
        case HumanCommand(command="abort"):
            reason = f"the human aborted the run{': ' + event.text if event.text else ''}"
            return _raise_new(
                before,
                4,
                "human_abort",
                reason,
                f"human_abort:{event.seq}",
                evidence=(event.seq,),
                run=event.run,
                settings=settings,
            )
    return []


def _fold_all(state: EscalationState, events: Iterable[Reaction]) -> EscalationState:
    for ev in events:
        state = _apply(state, ev)
    return state


def _on_fired(
    state: EscalationState, fired: DetectorFired, settings: EscalationSettings
) -> list[Reaction]:
    subject = subject_of(fired)
    evidence = (*fired.evidence, fired.seq) if fired.seq else fired.evidence
    eid = state.by_subject.get(subject)
    esc = state.open.get(eid) if eid else None
    if esc is None:
        level = min(max(fired.level, 1), 3)
        return _raise_new(
            state,
            level,
            fired.detector,
            fired.message,
            subject,
            evidence=evidence,
            agent=fired.agent,
            task_id=fired.task_id,
            run=fired.run,
            settings=settings,
        )
    if fired.level > esc.level:
        level = min(fired.level, 3)
        why = f"{fired.message}; it persisted through the level-{esc.level} response"
    elif esc.firings > settings.recovery_attempts and esc.level < 3:
        level = esc.level + 1
        failed = esc.firings - 1
        why = f"{fired.message}; recurred after {failed} failed recovery attempts"
    else:
        return []
    return _raise(
        state,
        esc.escalation_id,
        level,
        fired.detector,
        why,
        subject,
        evidence=evidence,
        agent=fired.agent,
        task_id=fired.task_id,
        run=fired.run,
        settings=settings,
    )


def _raise_new(
    state: EscalationState,
    level: int,
    rule: str,
    reason: str,
    subject: str,
    *,
    evidence: tuple[int, ...],
    run: str,
    settings: EscalationSettings,
    agent: str = "",
    task_id: str = "",
) -> list[Reaction]:
    eid = f"E{state.next_escalation}"
    return _raise(
        state,
        eid,
        level,
        rule,
        reason,
        subject,
        evidence=evidence,
        agent=agent,
        task_id=task_id,
        run=run,
        settings=settings,
    )


def _raise(
    state: EscalationState,
    eid: str,
    level: int,
    rule: str,
    reason: str,
    subject: str,
    *,
    evidence: tuple[int, ...],
    run: str,
    settings: EscalationSettings,
    agent: str = "",
    task_id: str = "",
) -> list[Reaction]:
    raised = EscalationRaised(
        escalation_id=eid,
        level=level,
        rule=rule,
        reason=reason,
        subject=subject,
        agent=agent,
        task_id=task_id,
        evidence=evidence,
        run=run,
        actor="monitor",
    )
    out: list[Reaction] = [raised]
    if level >= settings.alert_file_min_level:
        out.append(_alert(state, raised, reason))
    return out


def _alert(state: EscalationState, raised: EscalationRaised, reason: str) -> AlertRaised:
    aid = f"A{state.next_alert}"
    level = raised.level
    word = "ABORT" if level >= 4 else "EMERGENCY" if level >= 3 else "ESCALATE"
    advice: list[str] = []
    if raised.evidence:
        first = max(min(raised.evidence) - 1, 0)
        advice.append(f"Read the evidence: swarmlog log --after {first}")
    if level >= 4:
        advice += [
            "The run is stopping; its state is kept in the log.",
            "See what happened: swarmlog replay --explain TASK or swarmlog report",
            f"Acknowledge this alert: swarmlog ack {aid}",
        ]
    else:
        advice += [
            f"Fix the cause, then acknowledge so the team continues: swarmlog ack {aid}",
            "Resume all paused work: swarmlog resume",
            "Stop the run, keeping its state: swarmlog abort",
        ]
    return AlertRaised(
        alert_id=aid,
        level=level,
        rule=raised.rule,
        title=f"{word} level {level}: {raised.rule}",
        summary=reason,
        evidence=raised.evidence,
        actions=LEVEL_ACTIONS.get(level, ()),
        advice=tuple(advice),
        escalation_id=raised.escalation_id,
        run=raised.run,
        actor="monitor",
    )


def _ack_targets(state: EscalationState, target: str) -> list[str]:
    if target in ("", "all"):
        return sorted(state.open, key=lambda k: state.open[k].seq)
    if target in state.open:
        return [target]
    alert = state.alerts.get(target)
    if alert is not None and alert.escalation_id in state.open:
        return [alert.escalation_id]
    return []


def _resolve(eid: str, resolution: str, cmd: HumanCommand) -> EscalationResolved:
    return EscalationResolved(
        escalation_id=eid, resolution=resolution, by="human", run=cmd.run, actor="monitor"
    )


def team_directive(state: EscalationState) -> Directive:
    """Say what the team must do now: run, stay paused, wait for a human, or shut down."""
    if state.aborted:
        return "aborting"
    if state.paused:
        return "paused"
    if any(e.level >= 3 for e in state.open.values()):
        return "waiting_for_human"
    return "run"


# The greppable line


def alert_line(event: Event | EventBase) -> str | None:
    """The greppable line for an escalation: EMERGENCY, ESCALATE or ABORT, else None."""
    level = getattr(event, "level", None)
    kind = kind_of(event)
    if kind == "run_ended" and getattr(event, "outcome", "") == "aborted":
        return f"ABORT run={event.run} seq={event.seq} reason={getattr(event, 'reason', '')}"
    if kind not in {"escalation_raised", "alert_raised"} or level is None:
        return None
    word = "ABORT" if level >= 4 else "EMERGENCY" if level >= 3 else "ESCALATE"
    rule = getattr(event, "rule", "")
    text = getattr(event, "title", "") or getattr(event, "reason", "")
    return f"{word} level={level} rule={rule} run={event.run} seq={event.seq} {text}".rstrip()
