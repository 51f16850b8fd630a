"""Reviews: the plan, the fold, closing rounds into events, the Director's ruling, independence."""

from __future__ import annotations

import pytest

from swarmlog.errors import ProtocolViolation
from swarmlog.events import DecisionMade, Event, EventBase, PositionTaken, RoundClosed
from swarmlog.log import MemoryLog
from swarmlog.team import reviews
from swarmlog.team.settings import DEFAULT_SETTINGS, team_settings


class Review:
    """A review driven through a real in-memory log, as the scheduler would."""

    def __init__(
        self, participants: tuple[str, ...] | None = None, include_scout: bool = False
    ) -> None:
        self.log = MemoryLog(clock=lambda: 1_795_000_000.0)
        self.state = reviews.EMPTY
        opened = reviews.open_review(
            "rv-1",
            "auth module",
            participants=participants,
            include_scout=include_scout,
            task_id="t1",
        )
        self.add(opened)

    def add(self, *events: EventBase) -> list[Event]:
        stored = self.log.append(list(events))
        self.state = reviews.project(stored, self.state)
        return stored

    def say(self, round: int, **stances: str) -> None:
        self.add(
            *(
                PositionTaken(review_id="rv-1", agent=a, round=round, stance=s)
                for a, s in stances.items()
            )
        )

    @property
    def review(self) -> reviews.Review:
        return self.state.reviews["rv-1"]

    def close(
        self, trust: dict[str, float] | None = None, director_outcome: str | None = None
    ) -> tuple[RoundClosed, DecisionMade | None]:
        closed, decision = reviews.close_round(
            self.review,
            trust or {},
            DEFAULT_SETTINGS,
            decision_id="d1",
            director_outcome=director_outcome,
        )
        self.add(closed, *([decision] if decision else []))
        return closed, decision


def test_plan_rounds_and_participants():
    plan = reviews.review_plan()
    assert [(p.round, p.name) for p in plan] == [(1, "present"), (2, "critique"), (3, "decide")]
    assert plan[1].focus == {
        "inspector": "bugs",
        "refactorer": "quality",
        "architect": "alignment with the big picture",
    }
    assert plan[2].trust_weighted
    assert reviews.review_participants() == (
        "builder",
        "inspector",
        "refactorer",
        "architect",
        "director",
    )
    assert reviews.review_participants(include_scout=True)[:2] == ("builder", "scout")
    opened = reviews.open_review("r", "s", team_settings({"review": {"max_rounds": 2}}))
    assert opened.max_rounds == 2


def test_the_three_round_plan_converges_when_the_director_agrees():
    r = Review()
    r.say(1, builder="approve")
    closed, decision = r.close()
    assert (closed.round, closed.converged, decision) == (1, False, None)
    r.say(2, inspector="request_changes", refactorer="approve", architect="approve")
    closed, decision = r.close()
    assert (closed.round, closed.converged) == (2, False)
    assert closed.tally == {"(absent)": 7.0, "approve": 21.0, "request_changes": 7.0}
    r.say(3, director="approve")
    closed, decision = r.close()
    assert closed.rule == "supermajority" and decision is not None
    assert (decision.outcome, decision.rule, decision.dissent) == (
        "approve",
        "supermajority",
        ("inspector",),
    )
    assert decision.review_id == "rv-1" and decision.subject == "auth module"
    assert r.review.is_decided
    with pytest.raises(ProtocolViolation, match="already decided"):
        r.close()


def test_conflict_ends_at_max_rounds_with_the_directors_stance_and_the_controversy():
    r = Review()
    r.say(1, builder="approve")
    r.close()
    r.say(2, inspector="request_changes", refactorer="request_changes", architect="approve")
    r.close()
    r.say(3, director="request_changes")
    closed, decision = r.close()
    assert closed.rule == "max_rounds" and decision is not None
    assert (decision.rule, decision.by, decision.outcome, decision.pending) == (
        "max_rounds",
        "director",
        "request_changes",
        False,
    )
    assert decision.dissent == ("architect", "builder")
    assert decision.controversy.startswith("no convergence after 3 rounds: approve 14")


def test_max_rounds_without_a_director_stance_is_pending_until_the_ruling():
    r = Review(participants=("builder", "inspector"))
    r.say(1, builder="approve", inspector="reject")
    r.close()
    r.say(2, builder="reject", inspector="approve")
    r.close()
    r.say(3, builder="approve", inspector="reject")
    _, decision = r.close()
    assert decision is not None and decision.pending and decision.outcome == ""
    assert not r.review.is_decided
    ruling = reviews.force_decision(r.review, "reject", decision_id="d2", rationale="safer")
    assert (ruling.rule, ruling.outcome, ruling.dissent, ruling.pending) == (
        "max_rounds",
        "reject",
        ("builder",),
        False,
    )
    assert ruling.controversy == decision.controversy


def test_director_outcome_overrides_at_max_rounds_only():
    r = Review(participants=("builder", "inspector"))
    r.say(1, builder="approve", inspector="reject")
    r.close(director_outcome="reject")  # round 1: no rule fired, nothing to override
    assert r.review.decision is None
    r.say(2, builder="reject", inspector="approve")
    r.close()
    r.say(3, builder="approve", inspector="reject")
    _, decision = r.close(director_outcome="approve")
    assert decision is not None and (decision.outcome, decision.dissent) == (
        "approve",
        ("inspector",),
    )


def test_round_one_unanimity_ends_the_review_at_once():
    r = Review(participants=("builder", "inspector", "director"))
    r.say(1, builder="approve", inspector="approve", director="approve")
    closed, decision = r.close()
    assert closed.rule == "unanimous" and decision is not None and decision.outcome == "approve"


def test_round_zero_positions_and_stable_rule():
    r = Review(participants=("builder", "inspector", "refactorer"))
    r.say(0, builder="approve", inspector="reject", refactorer="approve")
    assert r.review.open_round == 0
    closed, _ = r.close()
    assert closed.round == 0 and not closed.converged
    assert r.review.open_round == 1
    closed, decision = r.close()  # nobody moved: stable, the majority stands
    assert closed.round == 1 and closed.rule == "stable"
    assert decision is not None and decision.outcome == "approve"


def test_a_director_can_force_a_decision_any_time():
    r = Review()
    r.say(1, builder="approve")
    ruling = reviews.force_decision(r.review, "escalate", decision_id="d9")
    assert (ruling.rule, ruling.by, ruling.dissent) == ("director", "director", ("builder",))
    r.add(ruling)
    with pytest.raises(ProtocolViolation):
        reviews.force_decision(r.review, "approve", decision_id="d10")


def test_snapshots_keep_history_when_late_positions_arrive():
    r = Review(participants=("a", "b"))
    r.say(1, a="approve", b="reject")
    r.close()
    r.say(1, b="approve")  # late, for a closed round: counts from now on, history stays
    assert r.review.snapshots == ({"a": "approve", "b": "reject"},)
    assert r.review.open_round == 2
    closed, _ = r.close()
    assert closed.rule == "unanimous"


def test_positions_for_an_unopened_review_are_kept():
    state = reviews.project(
        [PositionTaken(review_id="x", agent="a", round=1, stance="approve", seq=1)]
    )
    assert state.reviews["x"].stances(1) == {"a": "approve"}
    assert state.seq == 1


# Independence (guide §10: hallucination propagation)

SELF = "SELF-ASSESSMENT: flawless, no bugs, ship it"


def _critique_review() -> Review:
    r = Review(include_scout=True)
    r.add(
        PositionTaken(review_id="rv-1", agent="builder", round=1, stance="approve", rationale=SELF),
        PositionTaken(
            review_id="rv-1", agent="scout", round=1, stance="approve", rationale="JWT is standard"
        ),
    )
    r.close()
    r.add(
        PositionTaken(
            review_id="rv-1",
            agent="refactorer",
            round=2,
            stance="request_changes",
            rationale="REFACTORER-VIEW",
        )
    )
    return r


def test_inspector_context_excludes_the_builders_self_assessment():
    r = _critique_review()
    ctx = reviews.independent_context(r.review, "inspector", artifact="def login(): ...")
    assert "def login(): ..." in ctx and "auth module" in ctx
    assert SELF not in ctx and "builder (round" not in ctx
    assert "JWT is standard" in ctx  # research is evidence, not self-assessment
    assert "REFACTORER-VIEW" not in ctx  # same-round critiques stay independent
    assert "withheld" in ctx


def test_other_roles_see_earlier_rounds_including_the_presentation():
    r = _critique_review()
    ctx = reviews.independent_context(r.review, "refactorer", artifact="code")
    assert SELF in ctx and "withheld" not in ctx
    ctx = reviews.independent_context(r.review, "director", artifact="code", round=3)
    assert SELF in ctx and "REFACTORER-VIEW" in ctx
    # an inspector under another id is still independent when its role is given
    ctx = reviews.independent_context(r.review, "qa-1", artifact="code", role="inspector")
    assert SELF not in ctx
