"""Reviews (guide §3): the three-round plan, the fold over review events, and closing a round.

Round 1 *present* (Builder, optionally Scout), round 2 *critique* (Inspector for bugs, Refactorer
for quality, Architect for alignment), round 3 *decide* (Director, trust-weighted). After each
round ``close_round`` runs the convergence rules and returns the events to append: a
``round_closed`` and, when the review stops, a ``decision_made`` naming the rule that fired.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

import msgspec
from msgspec.structs import replace

from swarmlog.errors import ProtocolViolation
from swarmlog.events import DecisionMade, Event, PositionTaken, ReviewOpened, RoundClosed
from swarmlog.team.convergence import ABSENT, Verdict, evaluate
from swarmlog.team.settings import DEFAULT_SETTINGS, TeamSettings

__all__ = [
    "EMPTY",
    "INDEPENDENT_ROLES",
    "REVIEW_PLAN",
    "Review",
    "ReviewState",
    "RoundPlan",
    "apply",
    "close_round",
    "force_decision",
    "independent_context",
    "open_review",
    "project",
    "review_participants",
    "review_plan",
]


# The plan


class RoundPlan(msgspec.Struct, frozen=True, kw_only=True):
    """Who speaks in one review round, and what each looks for."""

    round: int
    name: str
    roles: tuple[str, ...]
    focus: dict[str, str] = msgspec.field(default_factory=dict)
    optional: tuple[str, ...] = ()
    trust_weighted: bool = False


REVIEW_PLAN: tuple[RoundPlan, ...] = (
    RoundPlan(
        round=1,
        name="present",
        roles=("builder",),
        optional=("scout",),
        focus={"builder": "present the implementation", "scout": "present research findings"},
    ),
    RoundPlan(
        round=2,
        name="critique",
        roles=("inspector", "refactorer", "architect"),
        focus={
            "inspector": "bugs",
            "refactorer": "quality",
            "architect": "alignment with the big picture",
        },
    ),
    RoundPlan(
        round=3,
        name="decide",
        roles=("director",),
        focus={"director": "weigh the input: approve, request changes or escalate"},
        trust_weighted=True,
    ),
)

# Roles whose critique must be independent of the author's own view (guide §10, hallucination
# propagation: the Inspector is verification, not a rubber stamp).
INDEPENDENT_ROLES: frozenset[str] = frozenset({"inspector"})


def review_plan(include_scout: bool = False) -> tuple[RoundPlan, ...]:
    """Return the three rounds; the Scout presents in round 1 only when asked to."""
    if include_scout:
        first = REVIEW_PLAN[0]
        return (replace(first, roles=(*first.roles, *first.optional)), *REVIEW_PLAN[1:])
    return REVIEW_PLAN


def review_participants(include_scout: bool = False) -> tuple[str, ...]:
    """Return every role that takes a position in the plan, in speaking order."""
    return tuple(role for plan in review_plan(include_scout) for role in plan.roles)


def open_review(
    review_id: str,
    subject: str,
    settings: TeamSettings = DEFAULT_SETTINGS,
    *,
    participants: tuple[str, ...] | None = None,
    include_scout: bool = False,
    task_id: str = "",
) -> ReviewOpened:
    """Return the event that opens a review, with the configured round limit."""
    return ReviewOpened(
        review_id=review_id,
        subject=subject,
        participants=participants
        if participants is not None
        else review_participants(include_scout),
        max_rounds=settings.review.max_rounds,
        task_id=task_id,
    )


# The fold


class Review(msgspec.Struct, frozen=True, kw_only=True):
    """One review: its positions, closed rounds and decision."""

    review_id: str
    subject: str = ""
    participants: tuple[str, ...] = ()
    max_rounds: int = 3
    task_id: str = ""
    opened_seq: int = 0
    positions: tuple[PositionTaken, ...] = ()
    rounds: tuple[RoundClosed, ...] = ()
    snapshots: tuple[dict[str, str], ...] = ()  # stances as they stood when each round closed
    decision: DecisionMade | None = None  # the latest (a pending one may be followed by a final)

    @property
    def is_decided(self) -> bool:
        return self.decision is not None and not self.decision.pending

    @property
    def open_round(self) -> int:
        """The round the next ``close_round`` closes."""
        if self.rounds:
            last = self.rounds[-1].round
            later = [p.round for p in self.positions if p.round > last]
            return max(later) if later else last + 1
        return max((p.round for p in self.positions), default=1)

    def stances(self, up_to_round: int) -> dict[str, str]:
        """Return each agent's stance as of a round: its latest position in it or before."""
        out: dict[str, str] = {}
        for p in sorted(self.positions, key=lambda p: (p.round, p.seq)):
            if p.round <= up_to_round:
                out[p.agent] = p.stance
        return out

    def latest_positions(self, up_to_round: int) -> dict[str, PositionTaken]:
        """Return each agent's latest position as of a round."""
        out: dict[str, PositionTaken] = {}
        for p in sorted(self.positions, key=lambda p: (p.round, p.seq)):
            if p.round <= up_to_round:
                out[p.agent] = p
        return out


class ReviewState(msgspec.Struct, frozen=True, kw_only=True):
    """Every review in the log, by id."""

    seq: int = 0
    reviews: dict[str, Review] = msgspec.field(default_factory=dict)


EMPTY = ReviewState()


def _put(state: ReviewState, event: Event, review: Review) -> ReviewState:
    return replace(state, seq=event.seq, reviews={**state.reviews, review.review_id: review})


def apply(state: ReviewState, event: Event) -> ReviewState:
    """Fold one event into the review state."""
    match event:
        case ReviewOpened(review_id=rid):
            review = Review(
                review_id=rid,
                subject=event.subject,
                participants=event.participants,
                max_rounds=event.max_rounds,
                task_id=event.task_id,
                opened_seq=event.seq,
            )
            return _put(state, event, review)
        case PositionTaken(review_id=rid):
            review = state.reviews.get(rid) or Review(review_id=rid)
            return _put(state, event, replace(review, positions=(*review.positions, event)))
        case RoundClosed(review_id=rid, round=number):
            review = state.reviews.get(rid) or Review(review_id=rid)
            review = replace(
                review,
                rounds=(*review.rounds, event),
                snapshots=(*review.snapshots, review.stances(number)),
            )
            return _put(state, event, review)
        case DecisionMade(review_id=rid) if rid:
            review = state.reviews.get(rid) or Review(review_id=rid)
            return _put(state, event, replace(review, decision=event))
    return replace(state, seq=event.seq)


def project(events: Iterable[Event], state: ReviewState = EMPTY) -> ReviewState:
    """Fold events into ``state``; resuming from a state equals replaying from the start."""
    return functools.reduce(apply, events, state)


# Closing rounds and deciding


def _controversy(verdict: Verdict, stances: Mapping[str, str], rounds: int) -> str:
    groups: dict[str, list[str]] = {}
    for agent, stance in sorted(stances.items()):
        groups.setdefault(stance, []).append(agent)
    parts = [
        f"{stance} {verdict.tally.get(stance, 0.0):g} ({', '.join(agents)})"
        for stance, agents in sorted(groups.items())
    ]
    if verdict.absent:
        parts.append(f"{ABSENT} {verdict.tally.get(ABSENT, 0.0):g} ({', '.join(verdict.absent)})")
    return f"no convergence after {rounds} rounds: " + " vs ".join(parts)


def close_round(
    review: Review,
    trust: Mapping[str, float],
    settings: TeamSettings = DEFAULT_SETTINGS,
    *,
    decision_id: str,
    director_outcome: str | None = None,
    director: str = "director",
) -> tuple[RoundClosed, DecisionMade | None]:
    """Close the review's open round and return the events to append (no seq or ts yet).

    At ``max_rounds`` the Director decides: ``director_outcome`` when given, else the Director's
    own latest stance; with neither the decision is returned ``pending`` (outcome ``""``) and the
    caller appends the Director's ruling later with ``force_decision``.

    Raises:
        ProtocolViolation: the review is already decided.
    """
    if review.is_decided:
        raise ProtocolViolation(
            f"review {review.review_id!r} is already decided "
            f"({review.decision.outcome if review.decision else ''!r}); open a new review"
        )
    number = review.open_round
    current = review.stances(number)
    verdict = evaluate(
        [*review.snapshots, current],
        review.participants,
        trust,
        settings.review,
        max_rounds=review.max_rounds,
        default_trust=settings.trust.start,
    )
    closed = RoundClosed(
        review_id=review.review_id,
        round=number,
        converged=verdict.converged,
        rule=verdict.rule,
        tally=verdict.tally,
    )
    if not verdict.converged:
        return closed, None
    base = DecisionMade(
        decision_id=decision_id,
        subject=review.subject,
        outcome=verdict.stance,
        rule=verdict.rule,
        review_id=review.review_id,
        by="team",
        rationale=(
            f"{verdict.rule}: {verdict.stance} holds {verdict.share:.0%} of the trust-weighted "
            f"vote after round {number}"
        ),
        dissent=verdict.dissent,
    )
    if verdict.rule != "max_rounds":
        return closed, base
    outcome = director_outcome or current.get(director, "")
    rounds = len(review.rounds) + 1
    return closed, replace(
        base,
        outcome=outcome,
        by=director,
        rationale=(
            f"max_rounds: {rounds} rounds without convergence; the director "
            + (f"decided {outcome}" if outcome else "must decide")
        ),
        dissent=tuple(a for a in sorted(current) if outcome and current[a] != outcome),
        controversy=_controversy(verdict, current, rounds),
        pending=not outcome,
    )


def force_decision(
    review: Review,
    outcome: str,
    *,
    decision_id: str,
    rationale: str = "",
    director: str = "director",
) -> DecisionMade:
    """Return the Director's ruling on a review, ending it whatever the votes (rule ``director``).

    Raises:
        ProtocolViolation: the review is already decided.
    """
    if review.is_decided:
        raise ProtocolViolation(
            f"review {review.review_id!r} is already decided; open a new review to revisit it"
        )
    number = review.rounds[-1].round if review.rounds else review.open_round
    current = review.stances(number)
    rule = "max_rounds" if review.decision and review.decision.pending else "director"
    return DecisionMade(
        decision_id=decision_id,
        subject=review.subject,
        outcome=outcome,
        rule=rule,
        review_id=review.review_id,
        by=director,
        rationale=rationale or f"the director decided {outcome}",
        dissent=tuple(a for a in sorted(current) if current[a] != outcome),
        controversy=review.decision.controversy if review.decision else "",
    )


# Independence


def independent_context(
    review: Review,
    agent: str,
    *,
    artifact: str,
    author: str = "builder",
    round: int | None = None,
    role: str | None = None,
) -> str:
    """Return the review context for one agent's prompt.

    Everyone sees the subject, the work itself and the positions of earlier rounds. An agent in an
    independent role (the Inspector) never sees the author's positions, i.e. its self-assessment,
    nor the other positions of its own round, so its critique cannot simply echo them.

    Args:
        review: the review so far.
        agent: who the prompt is for.
        artifact: the work under review (code, diff, document) without the author's commentary.
        author: the agent whose work it is.
        round: the round the agent speaks in (default: the review's open round).
        role: the agent's role when its id differs from it (default: ``agent``).
    """
    speaking = review.open_round if round is None else round
    independent = (role or agent) in INDEPENDENT_ROLES
    shown = [
        p
        for p in sorted(review.positions, key=lambda p: (p.round, p.seq))
        if p.round < speaking and p.agent != agent and not (independent and p.agent == author)
    ]
    lines = [f"# Review {review.review_id}: {review.subject}", "", "## Work under review", ""]
    lines += [artifact.rstrip(), ""]
    if shown:
        lines += ["## Earlier positions", ""]
        for p in shown:
            bugs = f", {p.critical_bugs} critical bug(s)" if p.critical_bugs else ""
            why = f": {p.rationale}" if p.rationale else ""
            lines.append(f"- {p.agent} (round {p.round}): {p.stance}{bugs}{why}")
        lines.append("")
    if independent:
        lines += [
            f"The author's ({author}) own assessment is withheld: verify the work independently.",
            "",
        ]
    return "\n".join(lines)
