"""Fold events into ``SwarmState``: pure, deterministic, one cheap handler per event type.

``apply`` dispatches on the event's type through a dict (cheaper than a long ``match``); events
no projection cares about (hardware and server samples, most heartbeats) only advance ``seq``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from functools import reduce
from typing import Any

from msgspec.structs import replace

from swarmlog.events import (
    AgentRegistered,
    AgentStatusChanged,
    AlertDelivered,
    AlertRaised,
    CheckpointWritten,
    CircuitClosed,
    CircuitOpened,
    ConfigLoaded,
    DecisionMade,
    DetectorFired,
    EscalationRaised,
    EscalationResolved,
    Event,
    EventBase,
    Heartbeat,
    HumanCommand,
    MessageRejected,
    MessageSent,
    ModelCallFinished,
    Note,
    PhaseCompleted,
    PhaseEntered,
    PositionTaken,
    ReviewOpened,
    RoundClosed,
    RunEnded,
    RunStarted,
    TaskBatched,
    TaskCancelled,
    TaskClaimed,
    TaskCompleted,
    TaskFailed,
    TaskRouted,
    TaskStarted,
    TaskSubmitted,
    TaskTimedOut,
    TrustChanged,
)
from swarmlog.state import claims, escalations
from swarmlog.state.claims import FINISHED, Claim, Claims
from swarmlog.state.model import (
    EMPTY,
    LATENCY_BUCKETS,
    AgentState,
    AlertState,
    Board,
    CheckpointInfo,
    DecisionRecord,
    EscalationState,
    MessageInfo,
    Messages,
    ModelStats,
    NoteInfo,
    PendingDecision,
    Phases,
    PhaseSpan,
    ReviewState,
    Span,
    SwarmState,
    TaskState,
    Team,
    Timeline,
    TrustChange,
    TrustHistory,
)

__all__ = [
    "MAX_NOTES",
    "MAX_RECENT_MESSAGES",
    "MAX_SPANS",
    "MAX_TEXT",
    "apply",
    "latency_bucket",
    "project",
    "role_of",
]

MAX_RECENT_MESSAGES = 50
MAX_SPANS = 300
MAX_NOTES = 50
MAX_TEXT = 2000  # longest free text kept in a projection (summaries, errors, message content)

_Handler = Callable[[SwarmState, Any], SwarmState]


def role_of(agent: str) -> str:
    """Return the role an agent id names: ``builder-2`` -> ``builder``."""
    head, sep, tail = agent.rpartition("-")
    return head if sep and tail.isdigit() else agent


def latency_bucket(ms: float) -> int:
    """Return the histogram bucket of a latency: quarter-octaves from 1 ms."""
    if ms < 1.0:
        return 0
    return min(int(math.log2(ms) * 4), LATENCY_BUCKETS - 1)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


# Team


def _agent(team: Team, agent: str) -> AgentState:
    return team.agents.get(agent) or AgentState(agent=agent, role=role_of(agent))


def _with_agent(team: Team, agent: AgentState, seq: int) -> Team:
    return replace(team, seq=seq, agents={**team.agents, agent.agent: agent})


def _run_started(s: SwarmState, e: RunStarted) -> SwarmState:
    t = s.team
    goes_on = e.continues(t.run)
    team = replace(
        t,
        seq=e.seq,
        run=e.run or t.run,
        goal=e.goal,
        scenario=e.scenario,
        started_ts=t.started_ts if goes_on and t.started_ts else e.ts,
        ended_ts=0.0,
        outcome="",
        end_reason="",
        budget_tokens=e.budget_tokens,
        budget_cost=e.budget_cost,
    )
    if goes_on:
        return _escalate(replace(s, team=team, board=_resumed(s.board)), e)
    board = Board(seq=e.seq, claims=claims.new_run(s.board.claims))  # a new run's own board
    # The morning report is the night's: its trust changes, messages, phases and timeline start
    # afresh with the run (the decision log and the notes stay the workspace's).
    s = replace(s, trust=TrustHistory(), messages=Messages(), phases=Phases(), timeline=Timeline())
    return _escalate(replace(s, team=team, board=board), e)  # a new run starts at level 0


def _resumed(board: Board) -> Board:
    """Every task held when the team restarted gets its attempt back (``claims.resumed``)."""
    tasks = board.tasks
    for task_id in board.claims.held:
        task = tasks.get(task_id)
        if task is not None:
            tasks = tasks.set(task_id, replace(task, claim=claims.resumed(task.claim)))
    return board if tasks is board.tasks else replace(board, tasks=tasks)


def _run_ended(s: SwarmState, e: RunEnded) -> SwarmState:
    team = replace(s.team, seq=e.seq, ended_ts=e.ts, outcome=e.outcome, end_reason=e.reason)
    s = _escalate(replace(s, team=team), e)  # the rule closes the run's escalations
    if s.team.blockers and s.alerts.escalations.ended:  # nothing of the run stays open
        s = replace(s, team=replace(s.team, blockers={}))
    return s


def _config_loaded(s: SwarmState, e: ConfigLoaded) -> SwarmState:
    team = replace(s.team, seq=e.seq, config_digest=e.digest)
    board = replace(s.board, seq=e.seq, claims=claims.configure(s.board.claims, e.config))
    return replace(s, seq=e.seq, ts=e.ts, team=team, board=board)


def _phase_entered(s: SwarmState, e: PhaseEntered) -> SwarmState:
    team = replace(s.team, seq=e.seq, phase=e.phase, iteration=e.iteration, phase_ts=e.ts)
    span = PhaseSpan(
        phase=e.phase, iteration=e.iteration, seq=e.seq, entered_ts=e.ts, expected_s=e.expected_s
    )
    phases = replace(s.phases, seq=e.seq, spans=(*s.phases.spans, span))
    return replace(s, seq=e.seq, ts=e.ts, team=team, phases=phases)


def _phase_completed(s: SwarmState, e: PhaseCompleted) -> SwarmState:
    spans = s.phases.spans
    for i in range(len(spans) - 1, -1, -1):
        sp = spans[i]
        if sp.phase == e.phase and sp.iteration == e.iteration and not sp.completed_ts:
            done = replace(sp, completed_ts=e.ts, outcome=e.outcome)
            phases = replace(s.phases, seq=e.seq, spans=(*spans[:i], done, *spans[i + 1 :]))
            return replace(s, seq=e.seq, ts=e.ts, phases=phases)
    return replace(s, seq=e.seq, ts=e.ts)


def _agent_registered(s: SwarmState, e: AgentRegistered) -> SwarmState:
    a = _agent(s.team, e.agent)
    a = replace(a, role=e.role or a.role, model=e.model or a.model, status="idle", since=e.ts)
    return replace(s, seq=e.seq, ts=e.ts, team=_with_agent(s.team, a, e.seq))


def _agent_status(s: SwarmState, e: AgentStatusChanged) -> SwarmState:
    a = replace(
        _agent(s.team, e.agent), status=e.status, task_id=e.task_id, detail=_cut(e.detail),
        since=e.ts,
    )  # fmt: skip
    return replace(s, seq=e.seq, ts=e.ts, team=_with_agent(s.team, a, e.seq))


def _checkpoint(s: SwarmState, e: CheckpointWritten) -> SwarmState:
    info = CheckpointInfo(
        checkpoint_id=e.checkpoint_id,
        seq=e.seq,
        ts=e.ts,
        trigger=_cut(e.trigger),
        summary=_cut(e.summary),
        phase=e.phase,
        decision=e.decision,
        state_digest=e.state_digest,
    )
    team = replace(
        s.team,
        seq=e.seq,
        last_checkpoint=info,
        next_trigger=_cut(e.next_trigger) if e.next_trigger else s.team.next_trigger,
    )
    return replace(s, seq=e.seq, ts=e.ts, team=team)


def _circuit_key(e: CircuitOpened | CircuitClosed) -> str:
    # A phase or run circuit is the breakers' (released by a new run or the human's resume);
    # a model's is the router's.
    return f"circuit:{e.target}" if e.scope == "model" else f"circuit:{e.scope}:{e.target}"


_RELEASED = ("circuit:phase:", "circuit:run:")


def _circuit_opened(s: SwarmState, e: CircuitOpened) -> SwarmState:
    esc = s.alerts.escalations
    if esc.ended or (e.scope != "model" and escalations.elsewhere(esc.run, e)):
        return replace(s, seq=e.seq, ts=e.ts)  # a run that is over halts nothing in this one
    text = f"Circuit open for {e.scope} {e.target}: {e.reason}".rstrip(": ")
    team = replace(s.team, seq=e.seq, blockers={**s.team.blockers, _circuit_key(e): text})
    return replace(s, seq=e.seq, ts=e.ts, team=team)


def _circuit_closed(s: SwarmState, e: CircuitClosed) -> SwarmState:
    key = _circuit_key(e)
    other = e.scope != "model" and escalations.elsewhere(s.alerts.escalations.run, e)
    if key not in s.team.blockers or other:  # as the breakers: another run's closes nothing here
        return replace(s, seq=e.seq, ts=e.ts)
    blockers = {k: v for k, v in s.team.blockers.items() if k != key}
    return replace(s, seq=e.seq, ts=e.ts, team=replace(s.team, seq=e.seq, blockers=blockers))


# Tasks: who holds what (state, holder, lease, slots) is the dispatcher's rule, ``claims``; this
# board adds what the Markdown shows besides: titles, times, summaries, tokens and cost.


def _count(counts: dict[str, int], old: str | None, new: str) -> dict[str, int]:
    out = counts.copy()
    if old is not None:
        left = out[old] - 1
        if left:
            out[old] = left
        else:
            del out[old]
    out[new] = out.get(new, 0) + 1
    return out


def _put(
    s: SwarmState,
    e: EventBase,
    old: TaskState | None,
    task: TaskState,
    *,
    team: Team | None = None,
    held: Claims | None = None,
    **board_fields: Any,
) -> SwarmState:
    b = s.board
    counts = b.counts
    status = task.claim.status
    if old is None or old.claim.status != status:
        counts = _count(counts, None if old is None else old.claim.status, status)
    board = replace(
        b,
        seq=e.seq,
        tasks=b.tasks.set(task.task_id, task),
        counts=counts,
        claims=b.claims if held is None else held,
        **board_fields,
    )
    return replace(s, seq=e.seq, ts=e.ts, board=board, team=team or s.team)


def _task_submitted(s: SwarmState, e: TaskSubmitted) -> SwarmState:
    if e.task_id in s.board.tasks:
        return replace(s, seq=e.seq, ts=e.ts)  # a resubmission of a known task changes nothing
    task = TaskState(
        task_id=e.task_id,
        seq=e.seq,
        title=_cut(e.title),
        task_kind=e.task_kind,
        role=e.role,
        phase=e.phase,
        deps=e.deps,
        priority=e.priority,
        parent=e.parent,
        claim=Claim(max_attempts=e.max_attempts),
        submitted_ts=e.ts,
    )
    return _put(s, e, None, task)


def _task_routed(s: SwarmState, e: TaskRouted) -> SwarmState:
    old = s.board.tasks.get(e.task_id)
    if old is None:
        return replace(s, seq=e.seq, ts=e.ts)  # never submitted in this run: no task of ours
    held, claim = claims.route(s.board.claims, old.claim, e)
    if claim is old.claim:
        return replace(s, seq=e.seq, ts=e.ts)
    return _put(s, e, old, replace(old, seq=e.seq, claim=claim, routed_ts=e.ts), held=held)


def _task_batched(s: SwarmState, e: TaskBatched) -> SwarmState:
    for task_id in e.task_ids:
        old = s.board.tasks.get(task_id)
        if old is None:
            continue
        claim = claims.batch(old.claim, e)
        if claim is not old.claim:
            s = _put(s, e, old, replace(old, seq=e.seq, claim=claim))
    return replace(s, seq=e.seq, ts=e.ts)


def _task_claimed(s: SwarmState, e: TaskClaimed) -> SwarmState:
    old = s.board.tasks.get(e.task_id)
    if old is None:
        return replace(s, seq=e.seq, ts=e.ts)
    held, claim = claims.claim(s.board.claims, old.claim, e)
    if claim is old.claim:
        return replace(s, seq=e.seq, ts=e.ts)  # void: a live lease, or no free slot
    task = replace(old, seq=e.seq, claim=claim, claimed_ts=e.ts, started_ts=0.0, finished_ts=0.0)
    a = replace(_agent(s.team, e.agent), task_id=e.task_id)
    return _put(s, e, old, task, team=_with_agent(s.team, a, e.seq), held=held)


def _task_started(s: SwarmState, e: TaskStarted) -> SwarmState:
    old = s.board.tasks.get(e.task_id)
    if old is None or old.claim.status in FINISHED:
        return replace(s, seq=e.seq, ts=e.ts)
    held, claim = claims.start(s.board.claims, old.claim, e)
    task = replace(old, seq=e.seq, claim=claim, started_ts=e.ts)
    a = replace(_agent(s.team, e.agent), task_id=e.task_id, status="working", since=e.ts)
    return _put(s, e, old, task, team=_with_agent(s.team, a, e.seq), held=held)


def _heartbeat(s: SwarmState, e: Heartbeat) -> SwarmState:
    if not e.lease_until:  # most heartbeats say only "alive": nothing to extend
        return replace(s, seq=e.seq, ts=e.ts)
    held = claims.extend(s.board.claims, e)
    if held is s.board.claims:
        return replace(s, seq=e.seq, ts=e.ts)
    return replace(s, seq=e.seq, ts=e.ts, board=replace(s.board, seq=e.seq, claims=held))


def _finish(
    s: SwarmState, e: EventBase, old: TaskState, task: TaskState, agent: str, outcome: str,
    held: Claims, **board_fields: Any,
) -> SwarmState:  # fmt: skip
    """Record the end of an attempt: free the agent, add a timeline span."""
    team = s.team
    if agent:
        a = _agent(team, agent)
        if a.task_id == task.task_id:
            a = replace(a, task_id="", status="idle" if a.status == "working" else a.status)
            team = _with_agent(team, a, e.seq)
    start = task.started_ts or task.claimed_ts
    if agent and start:
        span = Span(
            agent=agent, task_id=task.task_id, seq=e.seq, start=start, end=e.ts,
            outcome=outcome, title=task.title[:80],
        )  # fmt: skip
        tl = s.timeline
        spans = (*tl.spans, span)
        dropped = tl.dropped
        if len(spans) > MAX_SPANS:
            dropped += len(spans) - MAX_SPANS
            spans = spans[-MAX_SPANS:]
        s = replace(s, timeline=replace(tl, seq=e.seq, spans=spans, dropped=dropped))
    return _put(s, e, old, task, team=team, held=held, **board_fields)


def _task_completed(s: SwarmState, e: TaskCompleted) -> SwarmState:
    old = s.board.tasks.get(e.task_id)
    if old is None or old.claim.status in FINISHED:
        return replace(s, seq=e.seq, ts=e.ts)  # a duplicate completion is not counted twice
    held, claim = claims.complete(s.board.claims, old.claim, e)
    task = replace(
        old, seq=e.seq, claim=claim, finished_ts=e.ts, summary=_cut(e.summary), error="",
        tokens_in=old.tokens_in + e.tokens_in, tokens_out=old.tokens_out + e.tokens_out,
        cost=old.cost + e.cost,
    )  # fmt: skip
    b = s.board
    return _finish(
        s, e, old, task, e.agent, "done", held,
        tokens_in=b.tokens_in + e.tokens_in, tokens_out=b.tokens_out + e.tokens_out,
        cost=b.cost + e.cost,
    )  # fmt: skip


def _task_failed(s: SwarmState, e: TaskFailed) -> SwarmState:
    old = s.board.tasks.get(e.task_id)
    if old is None or old.claim.status in FINISHED:
        return replace(s, seq=e.seq, ts=e.ts)
    held, claim = claims.fail(s.board.claims, old.claim, e)
    task = replace(old, seq=e.seq, claim=claim, finished_ts=e.ts, error=_cut(e.error))
    return _finish(s, e, old, task, e.agent, "failed", held)


def _task_timed_out(s: SwarmState, e: TaskTimedOut) -> SwarmState:
    old = s.board.tasks.get(e.task_id)
    if old is None or old.claim.status in FINISHED:
        return replace(s, seq=e.seq, ts=e.ts)
    held, claim = claims.time_out(s.board.claims, old.claim, e)
    task = replace(old, seq=e.seq, claim=claim, finished_ts=e.ts, error="lease expired")
    return _finish(s, e, old, task, e.agent or old.claim.agent, "timed_out", held)


def _task_cancelled(s: SwarmState, e: TaskCancelled) -> SwarmState:
    old = s.board.tasks.get(e.task_id)
    if old is None or old.claim.status in FINISHED:
        return replace(s, seq=e.seq, ts=e.ts)
    held, claim = claims.cancel(s.board.claims, old.claim, e)
    task = replace(old, seq=e.seq, claim=claim, finished_ts=e.ts, error=_cut(e.reason))
    return _finish(s, e, old, task, "", "cancelled", held)


# Model calls


def _model_call(s: SwarmState, e: ModelCallFinished) -> SwarmState:
    models = s.models.models
    m = models.get(e.model) or ModelStats(model=e.model)
    hist = m.latency or (0,) * LATENCY_BUCKETS
    i = latency_bucket(e.total_ms)
    hist = (*hist[:i], hist[i] + 1, *hist[i + 1 :])
    outcome = e.outcome if e.outcome in _OUTCOMES else "other"
    is_ok = outcome == "ok"
    m = replace(
        m,
        seq=e.seq,
        calls=m.calls + 1,
        total_ms=m.total_ms + e.total_ms,
        ttft_ms=m.ttft_ms + e.ttft_ms,
        max_ms=max(m.max_ms, e.total_ms),
        latency=hist,
        prompt_tokens=m.prompt_tokens + e.prompt_tokens,
        completion_tokens=m.completion_tokens + e.completion_tokens,
        ok_ms=m.ok_ms + e.total_ms if is_ok else m.ok_ms,
        ok_completion_tokens=m.ok_completion_tokens + e.completion_tokens
        if is_ok
        else m.ok_completion_tokens,
        cost=m.cost + e.cost,
        **{outcome: getattr(m, outcome) + 1},
    )
    ms = replace(s.models, seq=e.seq, models={**models, e.model: m})
    return replace(s, seq=e.seq, ts=e.ts, models=ms)


_OUTCOMES = frozenset({"ok", "error", "timeout", "invalid", "rejected"})


# Messages, trust, reviews, decisions


def _bump(d: dict[str, int], key: str) -> dict[str, int]:
    return {**d, key: d.get(key, 0) + 1}


def _recent(msgs: tuple[MessageInfo, ...], info: MessageInfo) -> tuple[MessageInfo, ...]:
    out = (*msgs, info)
    return out[-MAX_RECENT_MESSAGES:] if len(out) > MAX_RECENT_MESSAGES else out


def _message_sent(s: SwarmState, e: MessageSent) -> SwarmState:
    m = s.messages
    info = MessageInfo(
        seq=e.seq, ts=e.ts, sender=e.sender, to=e.to, type=e.type, priority=e.priority,
        content=_cut(e.content),
    )  # fmt: skip
    m = replace(
        m, seq=e.seq, sent=m.sent + 1, by_type=_bump(m.by_type, e.type),
        by_priority=_bump(m.by_priority, e.priority), recent=_recent(m.recent, info),
    )  # fmt: skip
    return replace(s, seq=e.seq, ts=e.ts, messages=m)


def _message_rejected(s: SwarmState, e: MessageRejected) -> SwarmState:
    m = s.messages
    info = MessageInfo(
        seq=e.seq, ts=e.ts, sender=e.sender, to=e.to, type=e.type, priority=e.priority,
        content=_cut(e.content), rejected=_cut(e.reason) or "rejected",
    )  # fmt: skip
    m = replace(m, seq=e.seq, rejected=m.rejected + 1, recent=_recent(m.recent, info))
    return replace(s, seq=e.seq, ts=e.ts, messages=m)


def _trust_changed(s: SwarmState, e: TrustChanged) -> SwarmState:
    change = TrustChange(
        seq=e.seq, ts=e.ts, agent=e.agent, old=e.old, new=e.new, reason=_cut(e.reason),
        evidence_seq=e.evidence_seq,
    )  # fmt: skip
    trust = replace(s.trust, seq=e.seq, changes=(*s.trust.changes, change))
    a = replace(_agent(s.team, e.agent), trust=e.new)
    return replace(s, seq=e.seq, ts=e.ts, trust=trust, team=_with_agent(s.team, a, e.seq))


def _review_opened(s: SwarmState, e: ReviewOpened) -> SwarmState:
    r = ReviewState(
        review_id=e.review_id, subject=_cut(e.subject), seq=e.seq, opened_ts=e.ts,
        task_id=e.task_id, participants=e.participants,
    )  # fmt: skip
    d = replace(s.decisions, seq=e.seq, reviews={**s.decisions.reviews, e.review_id: r})
    return replace(s, seq=e.seq, ts=e.ts, decisions=d)


def _position_taken(s: SwarmState, e: PositionTaken) -> SwarmState:
    r = s.decisions.reviews.get(e.review_id)
    if r is None:
        return replace(s, seq=e.seq, ts=e.ts)
    r = replace(r, seq=e.seq, positions=r.positions + 1, rounds=max(r.rounds, e.round))
    d = replace(s.decisions, seq=e.seq, reviews={**s.decisions.reviews, e.review_id: r})
    return replace(s, seq=e.seq, ts=e.ts, decisions=d)


def _round_closed(s: SwarmState, e: RoundClosed) -> SwarmState:
    r = s.decisions.reviews.get(e.review_id)
    if r is None:
        return replace(s, seq=e.seq, ts=e.ts)
    r = replace(
        r, seq=e.seq, rounds=max(r.rounds, e.round), converged=e.converged,
        rule=e.rule or r.rule,
    )  # fmt: skip
    d = replace(s.decisions, seq=e.seq, reviews={**s.decisions.reviews, e.review_id: r})
    return replace(s, seq=e.seq, ts=e.ts, decisions=d)


def _decision_made(s: SwarmState, e: DecisionMade) -> SwarmState:
    rec = DecisionRecord(
        seq=e.seq, ts=e.ts, decision_id=e.decision_id, subject=_cut(e.subject),
        outcome=_cut(e.outcome), rule=e.rule, by=e.by, rationale=_cut(e.rationale),
        dissent=e.dissent, controversy=_cut(e.controversy), review_id=e.review_id,
        pending=e.pending, run=e.run,
    )  # fmt: skip
    d = replace(s.decisions, seq=e.seq, records=(*s.decisions.records, rec))
    pending = s.team.pending
    if e.pending:
        p = PendingDecision(
            decision_id=e.decision_id, subject=rec.subject, seq=e.seq, rationale=rec.rationale
        )
        pending = {**pending, e.decision_id: p}
    elif e.decision_id in pending:
        pending = {k: v for k, v in pending.items() if k != e.decision_id}
    team = s.team if pending is s.team.pending else replace(s.team, seq=e.seq, pending=pending)
    return replace(s, seq=e.seq, ts=e.ts, decisions=d, team=team)


# Alerts and escalation: which escalations are open, which alerts are acknowledged, the level and
# the human's pause are the escalation rule's (``escalations``), the fold the monitor obeys; this
# projection keeps what the Markdown shows besides (times, reasons, resolutions, deliveries) and
# follows the rule after every event it folds.


def _escalate(s: SwarmState, e: EventBase) -> SwarmState:
    """Fold ``e`` through the escalation rule and bring the projection in line with it."""
    a, team = s.alerts, s.team
    before = a.escalations
    if escalations.releases_circuits(before.run, before.aborted, e) and any(
        k.startswith(_RELEASED) for k in team.blockers
    ):
        blockers = {k: v for k, v in team.blockers.items() if not k.startswith(_RELEASED)}
        team = replace(team, seq=e.seq, blockers=blockers)
        s = replace(s, team=team)
    after = escalations.fold_one(before, e)
    if after is before:
        return replace(s, seq=e.seq, ts=e.ts)
    after = replace(after, seq=e.seq)
    open_, closed, blockers = a.open, a.closed, team.blockers
    gone = [eid for eid in before.open if eid not in after.open]
    if gone:
        by, why = escalations.closing(e)
        open_, blockers = dict(open_), dict(blockers)
        for eid in sorted(gone, key=lambda k: before.open[k].seq):
            blockers.pop(f"escalation:{eid}", None)
            rec = open_.pop(eid, None)
            if rec is not None:
                done = replace(rec, resolved_seq=e.seq, resolution=_cut(why), resolved_by=by)
                closed = (*closed, done)
    alerts = a.alerts
    if after.alerts is not before.alerts:
        alerts = dict(alerts)
        for aid, info in after.alerts.items():
            x = alerts.get(aid)
            if x is None or before.alerts.get(aid) is info:
                continue
            acked = info.acked
            alerts[aid] = replace(
                x,
                acked=acked,
                acked_by=info.closed_by if acked else "",
                acked_seq=info.closed_seq if acked else 0,
            )
    if isinstance(e, HumanCommand) and e.command == "pause":
        text = f"Paused by {e.actor or 'a human'}: {e.text}".rstrip(": ")
        blockers = {**blockers, "human:pause": text}
    elif not after.paused and "human:pause" in blockers:
        blockers = {k: v for k, v in blockers.items() if k != "human:pause"}
    if blockers is not team.blockers or after.paused != team.paused:
        team = replace(team, seq=e.seq, paused=after.paused, blockers=blockers)
    level = after.level
    is_open = escalations.emergency(after)
    a = replace(
        a,
        seq=e.seq,
        alerts=alerts,
        open=open_,
        closed=closed,
        resolved=len(closed),
        level=level,
        max_level=max(a.max_level, level),
        emergency_since=(a.emergency_since or e.seq) if is_open else 0,
        escalations=after,
    )
    return replace(s, seq=e.seq, ts=e.ts, alerts=a, team=team)


def _detector_fired(s: SwarmState, e: DetectorFired) -> SwarmState:
    a = replace(s.alerts, seq=e.seq, detectors=_bump(s.alerts.detectors, e.detector))
    return _escalate(replace(s, alerts=a), e)


def _escalation_raised(s: SwarmState, e: EscalationRaised) -> SwarmState:
    before = s.alerts.escalations.open.get(e.escalation_id)
    s = _escalate(s, e)
    if s.alerts.escalations.open.get(e.escalation_id) is before:
        return s  # the rule changed nothing: the escalation is already open at this level or higher
    x = EscalationState(
        escalation_id=e.escalation_id, seq=e.seq, ts=e.ts, level=e.level, rule=e.rule,
        reason=_cut(e.reason), agent=e.agent, task_id=e.task_id, evidence=e.evidence,
    )  # fmt: skip
    a = replace(s.alerts, open={**s.alerts.open, e.escalation_id: x})
    text = f"Escalation level {e.level} ({e.rule}): {x.reason}".rstrip(": ")
    blockers = {**s.team.blockers, f"escalation:{e.escalation_id}": text}
    team = replace(s.team, seq=e.seq, blockers=blockers)
    return replace(s, alerts=a, team=team)


def _escalation_resolved(s: SwarmState, e: EscalationResolved) -> SwarmState:
    return _escalate(s, e)


def _alert_raised(s: SwarmState, e: AlertRaised) -> SwarmState:
    if e.alert_id in s.alerts.alerts:
        return _escalate(s, e)
    x = AlertState(
        alert_id=e.alert_id, seq=e.seq, ts=e.ts, level=e.level, rule=e.rule,
        title=_cut(e.title), summary=_cut(e.summary), evidence=e.evidence,
        actions=tuple(_cut(t) for t in e.actions), advice=tuple(_cut(t) for t in e.advice),
        escalation_id=e.escalation_id,
    )  # fmt: skip
    return _escalate(
        replace(s, alerts=replace(s.alerts, alerts={**s.alerts.alerts, e.alert_id: x})), e
    )


def _alert_delivered(s: SwarmState, e: AlertDelivered) -> SwarmState:
    x = s.alerts.alerts.get(e.alert_id)
    if x is None:
        return replace(s, seq=e.seq, ts=e.ts)
    if e.ok:
        if e.channel in x.delivered:
            return replace(s, seq=e.seq, ts=e.ts)
        x = replace(x, delivered=(*x.delivered, e.channel))
    else:
        x = replace(x, failed_deliveries=x.failed_deliveries + 1)
    a = replace(s.alerts, seq=e.seq, alerts={**s.alerts.alerts, e.alert_id: x})
    return replace(s, seq=e.seq, ts=e.ts, alerts=a)


def _human_command(s: SwarmState, e: HumanCommand) -> SwarmState:
    return _escalate(s, e)


def _note(s: SwarmState, e: Note) -> SwarmState:
    notes = (*s.notes, NoteInfo(seq=e.seq, ts=e.ts, actor=e.actor, text=_cut(e.text)))
    return replace(s, seq=e.seq, ts=e.ts, notes=notes[-MAX_NOTES:])


_HANDLERS: dict[type, _Handler] = {
    RunStarted: _run_started,
    RunEnded: _run_ended,
    ConfigLoaded: _config_loaded,
    PhaseEntered: _phase_entered,
    PhaseCompleted: _phase_completed,
    AgentRegistered: _agent_registered,
    AgentStatusChanged: _agent_status,
    Heartbeat: _heartbeat,
    TaskSubmitted: _task_submitted,
    TaskRouted: _task_routed,
    TaskBatched: _task_batched,
    TaskClaimed: _task_claimed,
    TaskStarted: _task_started,
    TaskCompleted: _task_completed,
    TaskFailed: _task_failed,
    TaskTimedOut: _task_timed_out,
    TaskCancelled: _task_cancelled,
    ModelCallFinished: _model_call,
    MessageSent: _message_sent,
    MessageRejected: _message_rejected,
    TrustChanged: _trust_changed,
    CheckpointWritten: _checkpoint,
    ReviewOpened: _review_opened,
    PositionTaken: _position_taken,
    RoundClosed: _round_closed,
    DecisionMade: _decision_made,
    DetectorFired: _detector_fired,
    EscalationRaised: _escalation_raised,
    EscalationResolved: _escalation_resolved,
    AlertRaised: _alert_raised,
    AlertDelivered: _alert_delivered,
    CircuitOpened: _circuit_opened,
    CircuitClosed: _circuit_closed,
    HumanCommand: _human_command,
    Note: _note,
}


def apply(state: SwarmState, event: Event | EventBase) -> SwarmState:
    """Return the state after one event (events no projection uses only advance ``seq``)."""
    handler = _HANDLERS.get(type(event))
    if handler is None:
        return replace(state, seq=event.seq, ts=event.ts)
    return handler(state, event)


def project(events: Iterable[Event | EventBase], state: SwarmState = EMPTY) -> SwarmState:
    """Fold ``events`` into ``state``: ``project(a + b) == project(b, project(a))``."""
    return reduce(apply, events, state)
