"""Trust over several nights in one workspace: the log keeps every night and review ids
(``rv-<iteration>``) repeat each night, so tonight's ``rv-0`` is judged on its own evidence, while
the scores themselves are the team's history and carry over."""

from __future__ import annotations

from pathlib import Path

import msgspec

from swarmlog.events import (
    DecisionMade,
    Event,
    EventBase,
    PositionTaken,
    ReviewOpened,
    RoundClosed,
    RunEnded,
    RunStarted,
    TaskClaimed,
    TaskCompleted,
    TrustChanged,
)
from swarmlog.log import FileLog
from swarmlog.replay import load_check_modules, verify
from swarmlog.team import trust
from swarmlog.workspace import Workspace


class Nights:
    """One workspace's log; derives trust changes from each event and appends them, as the
    scheduler does (a scheduler started for the night folds the whole log from the start)."""

    def __init__(self, root: Path) -> None:
        self.log = FileLog(Workspace(root).events)
        self.state = trust.EMPTY
        self.run = ""

    def add(self, *events: EventBase) -> list[TrustChanged]:
        made: list[TrustChanged] = []
        for event in events:
            (stored,) = self.log.append([msgspec.structs.replace(event, run=event.run or self.run)])
            new = trust.trust_events(self.state, stored)
            self.state = trust.apply(self.state, stored)
            kept: list[Event] = self.log.append(new) if new else []
            self.state = trust.project(kept, self.state)
            made += [c for c in kept if isinstance(c, TrustChanged)]
        return made

    def night(
        self, run: str, *, bugs: int = 0, outcome: str = "approve", rounds: int = 1
    ) -> list[TrustChanged]:
        """A night whose one review, rv-0 of the Builder's presentation, ends in ``outcome``."""
        self.run = run
        self.add(RunStarted(goal="g", run=run))
        made = self.review("rv-0", bugs=bugs, outcome=outcome, rounds=rounds)
        self.add(RunEnded(outcome="completed"))
        return made

    def review(self, rid: str, *, bugs: int, outcome: str, rounds: int) -> list[TrustChanged]:
        self.add(
            TaskClaimed(task_id="present-0", agent="builder", lease_until=1e12, attempt=1),
            TaskCompleted(task_id="present-0", agent="builder"),
            ReviewOpened(review_id=rid, subject="the work of iteration 0", task_id="present-0"),
        )
        for n in range(1, rounds + 1):
            self.add(
                PositionTaken(
                    review_id=rid, agent="inspector", round=n, stance=outcome, critical_bugs=bugs
                ),
                RoundClosed(review_id=rid, round=n),
            )
        return self.add(
            DecisionMade(
                decision_id=f"d-{self.run}-{rid}",
                subject="s",
                outcome=outcome,
                rule="supermajority",
                review_id=rid,
            )
        )


def _moves(changes: list[TrustChanged]) -> list[tuple[str, float, float]]:
    return [(c.agent, c.old, c.new) for c in changes]


def test_the_second_nights_first_round_approval_raises_trust_as_the_first_did(
    tmp_path: Path,
) -> None:
    ws = Nights(tmp_path)
    assert _moves(ws.night("r1")) == [("builder", 7.0, 8.0)]
    second = ws.night("r2")
    assert _moves(second) == [("builder", 8.0, 9.0)]  # carried over, then raised again
    assert "rv-0" in second[0].reason and "first review round" in second[0].reason
    # A scheduler started afresh folds both nights from the log to the same scores.
    assert trust.project(ws.log.read()).scores == {"builder": 9.0}
    load_check_modules()
    assert verify(ws.log.read()) == []


def test_last_nights_bugs_and_rounds_are_not_tonights(tmp_path: Path) -> None:
    ws = Nights(tmp_path)
    first = ws.night("r1", bugs=2, outcome="request_changes", rounds=3)
    assert _moves(first) == [("builder", 7.0, 5.0)]
    # Tonight's rv-0: approved in its first round, nobody reported a critical bug.
    assert _moves(ws.night("r2")) == [("builder", 5.0, 6.0)]


def test_a_resumed_night_does_not_judge_its_review_twice(tmp_path: Path) -> None:
    ws = Nights(tmp_path)
    ws.run = "r1"
    ws.add(RunStarted(goal="g", run="r1"))
    assert _moves(ws.review("rv-0", bugs=0, outcome="approve", rounds=1)) == [("builder", 7.0, 8.0)]
    ws.add(RunStarted(goal="g", run="r1", resumed=True))  # after a crash: the same run goes on
    again = DecisionMade(
        decision_id="d-again",
        subject="s",
        outcome="approve",
        rule="supermajority",
        review_id="rv-0",
    )
    assert ws.add(again) == []
    assert ws.state.score("builder") == 8.0
