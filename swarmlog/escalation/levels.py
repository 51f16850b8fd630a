"""Escalation levels 0-4 (seed §4): what the team does about a detector firing or a human command.

Levels: 0 normal; 1 agent-level (the Director reassigns the task or the supervisor restarts the
agent; work continues); 2 coordination (emergency meeting: other agents pause, the Director
mediates, the phase may restart); 3 system (all agents pause, Scribe writes a full state dump, the
Director writes a summary, the team waits for a human); 4 abort (graceful shutdown, state kept).

Rules: an open escalation whose detector fires again is a failed recovery; after
``recovery_attempts`` of them it rises one level (1 → 2 → 3). A firing with a higher level than the
open escalation (runaway's second stage) raises it at once. A level-1 escalation's recovery worked
when its agent completes a task: the detectors forget the agent's error streak and its calls
without progress at that moment (``swarmlog.escalation.detectors``), so a recurrence is a new
episode; the monitor resolves it (``escalation_resolved`` by ``monitor``). No consensus
(``decision_made`` by ``max_rounds`` with controversy or dissent), an irreversible decision and an
exceeded budget go to the human (level 3). ``ack`` resolves, ``resume`` resolves every level-3
escalation and un-pauses, ``abort`` raises level 4. The run's end closes whatever is still open (the
rule's, when folded); nothing reacts to the records of a run that is over.

``apply`` folds the log into ``EscalationState`` by the one escalation rule,
``swarmlog.state.escalations``, which every view folds too (re-folding this module's own outputs is
a no-op, so a runtime may fold them as it emits them and again when it reads them back); ``step``
folds one event and returns the events to append; ``team_directive`` tells the runtime what to do
now.
"""

from __future__ import annotations

from collections.abc import Iterable

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
    TaskCompleted,
    kind_of,
)
from swarmlog.state.escalations import (
    ACKED,
    EMPTY_ESCALATIONS,
    RESUMED,
    AlertInfo,
    Directive,
    Escalations,
    OpenEscalation,
    ack_targets,
    apply,
    directive,
    fold_one,
    over,
    project,
    subject_of,
)
from swarmlog.text import plain_line

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

Reaction = EscalationRaised | EscalationResolved | AlertRaised

# The rule (which escalations are open, the alerts' status, pause and abort) is
# ``swarmlog.state.escalations``, shared with every view; this module adds the monitor's reactions.
EscalationState = Escalations
EMPTY = EMPTY_ESCALATIONS
team_directive = directive

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
        state = fold_one(state, reaction)
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
    if before.aborted or isinstance(event, RunStarted) or over(before, event):
        return []  # nothing to do after an abort, nor about a run that is over
    match event:
        case TaskCompleted(agent=agent) if agent:
            return [
                EscalationResolved(
                    escalation_id=e.escalation_id,
                    resolution=f"recovered: {agent} completed task {event.task_id}",
                    by="monitor",
                    run=event.run,
                    actor="monitor",
                )
                for e in sorted(before.open.values(), key=lambda e: e.seq)
                if e.level == 1 and e.agent == agent
            ]
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
            targets = ack_targets(before, event.target)
            return [_resolve(eid, ACKED, event) for eid in targets]
        case HumanCommand(command="resume"):
            return [
                _resolve(e.escalation_id, RESUMED, event)
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
        state = fold_one(state, ev)
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


def _resolve(eid: str, resolution: str, cmd: HumanCommand) -> EscalationResolved:
    return EscalationResolved(
        escalation_id=eid, resolution=resolution, by="human", run=cmd.run, actor="monitor"
    )


# The greppable line


def alert_line(event: Event | EventBase) -> str | None:
    """The greppable line for an escalation: EMERGENCY, ESCALATE or ABORT, else None."""
    level = getattr(event, "level", None)
    kind = kind_of(event)
    if kind == "run_ended" and getattr(event, "outcome", "") == "aborted":
        why = plain_line(getattr(event, "reason", ""), 300)
        return f"ABORT run={plain_line(event.run)} seq={event.seq} reason={why}"
    if kind not in {"escalation_raised", "alert_raised"} or level is None:
        return None
    word = "ABORT" if level >= 4 else "EMERGENCY" if level >= 3 else "ESCALATE"
    # One line whatever a model wrote: the line is grepped, and printed to a terminal.
    rule = plain_line(getattr(event, "rule", ""))
    text = plain_line(getattr(event, "title", "") or getattr(event, "reason", ""), 300)
    run = plain_line(event.run)
    return f"{word} level={level} rule={rule} run={run} seq={event.seq} {text}".rstrip()
