"""Trust scores (guide §3, §9): 1 to 10, everyone starts at 7, every change has its evidence.

Scores change only through ``trust_changed`` events. ``trust_events`` derives those events from
evidence already in the log, so a replay re-derives every change:

- a confirmed critical bug: a review of a task ends in a decision that does not approve, and a
  reviewer other than the author reported ``critical_bugs > 0`` → the task's author
  ``critical_bug`` (-2, the seed's example);
- work approved in the first review round → its author ``first_round_approval`` (+1);
- ``task_timed_out`` → the agent holding the task ``timeout`` (-1), unless the lease was lost to a
  crash rather than to the agent: the holder registered again (``agent_registered``: its process
  was killed or restarted and came back) after the claim, or the whole team went down and came
  back (a new or resumed ``run_started``) after the claim. The task is retried either way; only a
  genuine timeout, the agent process alive and registered from its claim to the timeout, costs
  trust;
- ``task_failed`` whose ``error`` starts with ``invalid reply`` (any case) →
  ``invalid_reply`` (-1).

Scores are clamped to ``[min, max]``; a change the clamp cancels is not recorded. Roles in
``exempt`` (Director, Scribe: "N/A" in the seed's table) keep the start score.

Scores are the team's history and carry over from night to night (the log keeps every night). The
evidence bookkeeping belongs to one run: review ids (``rv-<iteration>``) and task ids repeat every
night, so a new run (a ``run_started`` that does not resume the run in progress, the rule of
``swarmlog.runtime.context``) starts it afresh, and tonight's ``rv-0`` is judged on its own rounds
and positions, not taken for last night's settled one.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

import msgspec
from msgspec.structs import replace

from swarmlog.events import (
    AgentRegistered,
    DecisionMade,
    Event,
    PositionTaken,
    ReviewOpened,
    RoundClosed,
    RunStarted,
    TaskClaimed,
    TaskCompleted,
    TaskFailed,
    TaskTimedOut,
    TrustChanged,
)
from swarmlog.team.settings import DEFAULT_SETTINGS, TeamSettings, TrustSettings

__all__ = [
    "EMPTY",
    "TrustState",
    "apply",
    "below_threshold",
    "crashed",
    "fell_below",
    "project",
    "trust_events",
    "weights",
]


class TrustState(msgspec.Struct, frozen=True, kw_only=True):
    """Scores, plus the evidence bookkeeping the trust rules need (authors, reviews).

    ``scores`` span every night; everything below ``run`` is the current run's.
    """

    seq: int = 0
    scores: dict[str, float] = msgspec.field(default_factory=dict)
    run: str = ""  # the run in progress
    authors: dict[str, str] = msgspec.field(default_factory=dict)  # task -> who completed it
    holders: dict[str, str] = msgspec.field(default_factory=dict)  # task -> latest claimant
    review_tasks: dict[str, str] = msgspec.field(default_factory=dict)  # review -> task
    review_bugs: dict[str, dict[str, int]] = msgspec.field(default_factory=dict)
    review_rounds: dict[str, int] = msgspec.field(default_factory=dict)  # rounds closed
    settled: frozenset[str] = frozenset()  # reviews whose final decision was already judged
    claimed: dict[str, int] = msgspec.field(default_factory=dict)  # task -> seq of latest claim
    registered: dict[str, int] = msgspec.field(default_factory=dict)  # agent -> latest registration
    started: int = 0  # seq of the latest run_started, new or resumed: the team came (back) up

    def score(self, agent: str, start: float = DEFAULT_SETTINGS.trust.start) -> float:
        """Return an agent's score (``start`` before any change)."""
        return self.scores.get(agent, start)


EMPTY = TrustState()


def apply(state: TrustState, event: Event) -> TrustState:
    """Fold one event into the trust state."""
    match event:
        case RunStarted():
            if event.continues(state.run):
                return replace(state, seq=event.seq, started=event.seq)
            return TrustState(seq=event.seq, scores=state.scores, run=event.run, started=event.seq)
        case AgentRegistered(agent=agent):
            registered = {**state.registered, agent: event.seq}
            return replace(state, seq=event.seq, registered=registered)
        case TrustChanged(agent=agent, new=new):
            return replace(state, seq=event.seq, scores={**state.scores, agent: new})
        case TaskCompleted(task_id=task, agent=agent):
            return replace(state, seq=event.seq, authors={**state.authors, task: agent})
        case TaskClaimed(task_id=task, agent=agent):
            holders = {**state.holders, task: agent}
            return replace(
                state, seq=event.seq, holders=holders, claimed={**state.claimed, task: event.seq}
            )
        case ReviewOpened(review_id=rid, task_id=task) if task:
            return replace(state, seq=event.seq, review_tasks={**state.review_tasks, rid: task})
        case PositionTaken(review_id=rid, agent=agent, critical_bugs=bugs):
            bugs_by = {**state.review_bugs.get(rid, {}), agent: bugs}
            return replace(state, seq=event.seq, review_bugs={**state.review_bugs, rid: bugs_by})
        case RoundClosed(review_id=rid):
            rounds = {**state.review_rounds, rid: state.review_rounds.get(rid, 0) + 1}
            return replace(state, seq=event.seq, review_rounds=rounds)
        case DecisionMade(review_id=rid, pending=False) if rid:
            return replace(state, seq=event.seq, settled=state.settled | {rid})
    return replace(state, seq=event.seq)


def project(events: Iterable[Event], state: TrustState = EMPTY) -> TrustState:
    """Fold events into ``state``; resuming from a state equals replaying from the start."""
    return functools.reduce(apply, events, state)


def _change(
    state: TrustState, agent: str, delta: float, reason: str, evidence: int, s: TrustSettings
) -> list[TrustChanged]:
    if not agent or agent in s.exempt or delta == 0:
        return []
    old = state.score(agent, s.start)
    new = min(s.max, max(s.min, old + delta))
    if new == old:
        return []
    return [
        TrustChanged(
            agent=agent,
            old=old,
            new=new,
            reason=reason,
            evidence_seq=evidence,
            key=f"trust-{evidence}-{agent}",  # a resumed scheduler cannot apply it twice
        )
    ]


def trust_events(
    state: TrustState, event: Event, settings: TeamSettings = DEFAULT_SETTINGS
) -> list[TrustChanged]:
    """Return the trust changes ``event`` is evidence for (empty for most events).

    ``state`` is the trust state just before ``event`` (already stored, so it has its seq); the
    caller appends the changes and folds them. Each change carries ``evidence_seq=event.seq`` and
    an idempotency key derived from it.
    """
    s = settings.trust
    match event:
        case TaskTimedOut(task_id=task, agent=agent):
            holder = agent or state.holders.get(task, "")
            if crashed(state, task, holder):
                return []  # the lease was lost to a crash, not to the agent; the task is retried
            reason = f"task {task} timed out"
            return _change(state, holder, s.timeout, reason, event.seq, s)
        case TaskFailed(task_id=task, agent=agent, error=error):
            if not error.strip().lower().startswith(s.invalid_reply_prefix.lower()):
                return []
            reason = f"invalid reply on task {task}: {error.strip()[:80]}"
            return _change(state, agent, s.invalid_reply, reason, event.seq, s)
        case DecisionMade(review_id=rid, pending=False, outcome=outcome) if rid:
            if rid in state.settled:
                return []
            task = state.review_tasks.get(rid, "")
            author = state.authors.get(task, "")
            if not author:
                return []
            bugs = max(
                (n for agent, n in state.review_bugs.get(rid, {}).items() if agent != author),
                default=0,
            )
            approved = outcome in settings.review.approve_stances
            if bugs > 0 and not approved:
                reason = (
                    f"confirmed critical bug ({bugs} reported) in task {task}: review {rid} "
                    f"decided {outcome}"
                )
                return _change(state, author, s.critical_bug, reason, event.seq, s)
            if approved and bugs == 0 and state.review_rounds.get(rid, 0) <= 1:
                reason = f"task {task} approved in the first review round ({rid})"
                return _change(state, author, s.first_round_approval, reason, event.seq, s)
    return []


def crashed(state: TrustState, task: str, agent: str) -> bool:
    """Whether a timeout of ``task`` held by ``agent`` is a crash rather than the agent's doing:
    since the task's latest claim the agent registered again (its process died or was restarted
    and came back) or the team came back up (a new or resumed ``run_started``). A timeout of a
    task with no claim known in this run is the agent's."""
    claim = state.claimed.get(task, 0)
    if not claim:
        return False
    return state.registered.get(agent, 0) > claim or state.started > claim


def below_threshold(state: TrustState, settings: TeamSettings = DEFAULT_SETTINGS) -> list[str]:
    """Return the agents whose score is below ``emergency_below`` (guide §3: raise an emergency)."""
    return sorted(a for a, v in state.scores.items() if v < settings.trust.emergency_below)


def fell_below(change: TrustChanged, settings: TeamSettings = DEFAULT_SETTINGS) -> bool:
    """Say whether this change took a score from at or above the threshold to below it."""
    return change.old >= settings.trust.emergency_below > change.new


def weights(
    state: TrustState, agents: Sequence[str], settings: TeamSettings = DEFAULT_SETTINGS
) -> dict[str, float]:
    """Return each agent's vote weight (its trust score) for ``convergence.evaluate``."""
    return {a: state.score(a, settings.trust.start) for a in agents}
