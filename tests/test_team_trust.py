"""Trust: every rule derives a trust_changed from evidence in the log, clamped to the range."""

from __future__ import annotations

from swarmlog.events import (
    DecisionMade,
    Event,
    EventBase,
    PositionTaken,
    ReviewOpened,
    RoundClosed,
    TaskClaimed,
    TaskCompleted,
    TaskFailed,
    TaskTimedOut,
    TrustChanged,
)
from swarmlog.log import MemoryLog
from swarmlog.team import trust
from swarmlog.team.settings import TeamSettings, team_settings


class Run:
    """Appends evidence, derives trust changes and appends them, like the scheduler."""

    def __init__(self, settings: TeamSettings | None = None) -> None:
        self.log = MemoryLog(clock=lambda: 1_795_000_000.0)
        self.state = trust.EMPTY
        self.settings = settings or TeamSettings()
        self.changes: list[TrustChanged] = []

    def add(self, *events: EventBase) -> list[TrustChanged]:
        made: list[TrustChanged] = []
        for event in events:
            (stored,) = self.log.append([event])
            new = trust.trust_events(self.state, stored, self.settings)
            self.state = trust.apply(self.state, stored)
            kept: list[Event] = self.log.append(new) if new else []
            self.state = trust.project(kept, self.state)
            made += [c for c in kept if isinstance(c, TrustChanged)]
        self.changes += made
        return made

    def review(self, rid: str, author: str, *, bugs: int, outcome: str, rounds: int = 1) -> None:
        self.add(
            TaskCompleted(task_id=f"t-{rid}", agent=author),
            ReviewOpened(review_id=rid, subject="s", task_id=f"t-{rid}"),
            PositionTaken(review_id=rid, agent=author, round=1, stance="approve", critical_bugs=9),
            PositionTaken(
                review_id=rid, agent="inspector", round=1, stance=outcome, critical_bugs=bugs
            ),
        )
        for n in range(1, rounds + 1):
            self.add(RoundClosed(review_id=rid, round=n))


def test_everyone_starts_at_seven():
    assert trust.EMPTY.score("builder") == 7.0
    assert trust.weights(trust.EMPTY, ["builder", "inspector"]) == {
        "builder": 7.0,
        "inspector": 7.0,
    }


def test_confirmed_critical_bug_lowers_the_author_by_two():
    run = Run()
    run.review("rv", "builder", bugs=1, outcome="request_changes", rounds=2)
    (change,) = run.add(
        DecisionMade(
            decision_id="d", subject="s", outcome="request_changes", rule="stable", review_id="rv"
        )
    )
    assert (change.agent, change.old, change.new) == ("builder", 7.0, 5.0)
    assert change.evidence_seq == run.log.last_seq() - 1
    assert "critical bug" in change.reason and "rv" in change.reason
    assert change.key == f"trust-{change.evidence_seq}-builder"
    assert run.state.score("builder") == 5.0


def test_a_pending_decision_confirms_nothing_and_a_review_is_judged_once():
    run = Run()
    run.review("rv", "builder", bugs=2, outcome="reject", rounds=3)
    pending = DecisionMade(
        decision_id="d", subject="s", outcome="", rule="max_rounds", review_id="rv", pending=True
    )
    assert run.add(pending) == []
    final = DecisionMade(
        decision_id="d", subject="s", outcome="reject", rule="max_rounds", review_id="rv"
    )
    assert len(run.add(final)) == 1
    assert run.add(final) == []  # a second final decision on the same review changes nothing


def test_bugs_claimed_but_work_approved_change_nothing():
    run = Run()
    run.review("rv", "builder", bugs=1, outcome="approve", rounds=2)
    decision = DecisionMade(
        decision_id="d", subject="s", outcome="approve", rule="supermajority", review_id="rv"
    )
    assert run.add(decision) == []


def test_first_round_approval_raises_the_author_by_one():
    run = Run()
    run.review("rv", "builder", bugs=0, outcome="approve", rounds=1)
    (change,) = run.add(
        DecisionMade(
            decision_id="d", subject="s", outcome="approve", rule="unanimous", review_id="rv"
        )
    )
    assert (change.agent, change.new) == ("builder", 8.0)
    assert "first review round" in change.reason
    # approval in a later round earns nothing
    run.review("rv2", "builder", bugs=0, outcome="approve", rounds=2)
    assert (
        run.add(
            DecisionMade(
                decision_id="e", subject="s", outcome="approve", rule="stable", review_id="rv2"
            )
        )
        == []
    )


def test_timeout_and_invalid_reply_lower_by_one():
    run = Run()
    run.add(TaskClaimed(task_id="t1", agent="scout", lease_until=1.0))
    (timeout,) = run.add(TaskTimedOut(task_id="t1"))  # the holder is found from the claim
    assert (timeout.agent, timeout.new) == ("scout", 6.0) and "timed out" in timeout.reason
    (invalid,) = run.add(TaskFailed(task_id="t2", agent="builder", error="Invalid reply: not JSON"))
    assert (invalid.agent, invalid.new) == ("builder", 6.0)
    assert run.add(TaskFailed(task_id="t3", agent="builder", error="server said 503")) == []
    assert run.add(TaskTimedOut(task_id="unknown")) == []


def test_scores_are_clamped_and_clamped_noops_are_not_recorded():
    run = Run()
    for n in range(8):
        run.add(TaskTimedOut(task_id=f"t{n}", agent="builder"))
    assert [c.new for c in run.changes] == [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]
    assert run.state.score("builder") == 1.0
    high = Run(team_settings({"trust": {"start": 9.5}}))
    high.review("rv", "builder", bugs=0, outcome="approve")
    (change,) = high.add(
        DecisionMade(
            decision_id="d", subject="s", outcome="approve", rule="unanimous", review_id="rv"
        )
    )
    assert (change.old, change.new) == (9.5, 10.0)
    high.review("rv2", "builder", bugs=0, outcome="approve")
    assert (
        high.add(
            DecisionMade(
                decision_id="e", subject="s", outcome="approve", rule="unanimous", review_id="rv2"
            )
        )
        == []
    )


def test_exempt_roles_and_configured_amounts():
    run = Run(team_settings({"trust": {"timeout": -3, "exempt": ["scout"]}}))
    assert run.add(TaskTimedOut(task_id="t", agent="scout")) == []
    (change,) = run.add(TaskTimedOut(task_id="t", agent="director"))
    assert change.new == 4.0


def test_below_threshold_and_the_crossing():
    run = Run()
    for n in range(5):
        run.add(TaskTimedOut(task_id=f"t{n}", agent="inspector"))
    assert trust.below_threshold(run.state) == ["inspector"]
    crossings = [c for c in run.changes if trust.fell_below(c)]
    assert [(c.old, c.new) for c in crossings] == [(3.0, 2.0)]


def test_without_a_known_author_no_one_is_blamed():
    run = Run()
    run.add(
        ReviewOpened(review_id="rv", subject="s"),
        PositionTaken(review_id="rv", agent="inspector", round=1, stance="reject", critical_bugs=3),
        RoundClosed(review_id="rv", round=1),
    )
    assert (
        run.add(
            DecisionMade(
                decision_id="d", subject="s", outcome="reject", rule="stable", review_id="rv"
            )
        )
        == []
    )
