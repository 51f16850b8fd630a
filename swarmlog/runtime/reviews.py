"""Reviews as the scheduler sees them: positions per round, and closing a round into a decision."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from msgspec.structs import replace

from swarmlog.events import (
    DecisionMade,
    Event,
    EventBase,
    PositionTaken,
    ReviewOpened,
    RoundClosed,
)

__all__ = ["EMPTY_BOOK", "ReviewBook", "ReviewView", "apply_reviews", "close_round"]


class ReviewView(msgspec.Struct, frozen=True, kw_only=True):
    review_id: str
    participants: tuple[str, ...] = ()
    max_rounds: int = 3
    positions: dict[int, dict[str, PositionTaken]] = msgspec.field(default_factory=dict)
    closed_round: int = 0
    decision: DecisionMade | None = None

    def rationales(self) -> list[str]:
        """What reviewers asked for in the last round with positions, for the fix tasks."""
        if not self.positions:
            return []
        last = self.positions[max(self.positions)]
        return [
            f"{p.agent}: {p.rationale}"
            for p in sorted(last.values(), key=lambda p: p.agent)
            if p.stance != "approve" and p.rationale
        ]


class ReviewBook(msgspec.Struct, frozen=True, kw_only=True):
    seq: int = 0
    reviews: dict[str, ReviewView] = msgspec.field(default_factory=dict)


EMPTY_BOOK = ReviewBook()


def apply_reviews(book: ReviewBook, event: Event) -> ReviewBook:
    """Fold review events."""
    match event:
        case ReviewOpened():
            view = ReviewView(
                review_id=event.review_id,
                participants=event.participants,
                max_rounds=event.max_rounds,
            )
        case PositionTaken(review_id=rid) if rid in book.reviews:
            cur = book.reviews[rid]
            rnd = {**cur.positions.get(event.round, {}), event.agent: event}
            view = replace(cur, positions={**cur.positions, event.round: rnd})
        case RoundClosed(review_id=rid) if rid in book.reviews:
            view = replace(book.reviews[rid], closed_round=event.round)
        case DecisionMade(review_id=rid) if rid in book.reviews and not event.pending:
            view = replace(book.reviews[rid], decision=event)
        case _:
            return book
    return replace(book, seq=event.seq, reviews={**book.reviews, view.review_id: view})


def close_round(
    review: ReviewView,
    round_no: int,
    trust: Mapping[str, float],
    *,
    run: str,
    max_rounds: int,
) -> list[EventBase]:
    """Run the convergence rules on a finished round; return RoundClosed (+ DecisionMade)."""
    from swarmlog.team.convergence import check_convergence  # the team's rules (issue 6)

    rounds = [review.positions.get(r, {}) for r in sorted(review.positions) if r <= round_no]
    verdict = check_convergence(rounds, trust, max_rounds=max_rounds)
    events: list[EventBase] = [
        RoundClosed(
            review_id=review.review_id,
            round=round_no,
            converged=verdict.converged,
            rule=verdict.rule,
            tally=verdict.tally,
            key=f"round:{run}:{review.review_id}:{round_no}",
        )
    ]
    if verdict.converged:
        events.append(
            DecisionMade(
                decision_id=f"d-{review.review_id}",
                subject=f"review {review.review_id}",
                outcome=verdict.outcome,
                rule=verdict.rule,
                review_id=review.review_id,
                by="director" if verdict.rule in ("max_rounds", "director") else "team",
                rationale=verdict.rationale,
                dissent=tuple(verdict.dissent),
                controversy=verdict.controversy,
                key=f"decision:{run}:{review.review_id}",
            )
        )
    return events
