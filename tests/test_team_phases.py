"""Phases: the plan, the fold, transitions bounded by max_iterations, overdue checks; cycles."""

from __future__ import annotations

import pytest

from swarmlog.errors import ProtocolViolation
from swarmlog.events import EventBase, PhaseCompleted, PhaseEntered
from swarmlog.log import MemoryLog
from swarmlog.team import phases
from swarmlog.team.deadlock import find_cycle
from swarmlog.team.settings import team_settings


def test_plans_follow_the_seed():
    plan = phases.phase_plan("planning")
    assert plan.mode == "sequential"
    assert [s.role for s in plan.steps] == ["director", "architect", "scout"]
    plan = phases.phase_plan("execution", team_settings({"phases": {"max_concurrent": 3}}))
    assert (plan.mode, plan.max_parallel) == ("parallel", 3)
    assert {s.role for s in plan.steps} == {"builder", "scout"}
    assert phases.phase_plan("execution").max_parallel == 2
    plan = phases.phase_plan("review")
    assert [(s.role, s.action) for s in plan.steps] == [
        ("refactorer", "review_quality"),
        ("inspector", "review_bugs"),
        ("director", "verify"),
    ]
    assert phases.phase_plan("iteration").steps[0].role == "director"
    with pytest.raises(ProtocolViolation, match="unknown phase 'lunch'"):
        phases.phase_plan("lunch")


class Team:
    def __init__(self, **settings: object) -> None:
        self.log = MemoryLog(clock=lambda: 1_000.0)
        self.state = phases.EMPTY
        self.settings = team_settings({"phases": settings} if settings else {})

    def add(self, event: EventBase) -> None:
        self.state = phases.project(self.log.append([event]), self.state)

    def step(self, outcome: str = "done") -> str | None:
        """Complete the active phase (if any) and enter the next; return its name."""
        if self.state.is_active:
            self.add(phases.complete_phase(self.state, outcome))
        nxt = phases.next_phase(self.state, self.settings)
        if nxt is None:
            return None
        self.add(nxt)
        return f"{nxt.phase}#{nxt.iteration}"


def test_all_four_phases_with_iterations_bounded():
    team = Team(max_iterations=2)
    walk = [team.step()]
    walk += [team.step(), team.step()]
    walk += [team.step("revise"), team.step("execution"), team.step()]
    walk += [team.step("request_changes"), team.step("review")]
    walk += [team.step("revise")]
    assert walk == [
        "planning#0",
        "execution#0",
        "review#0",
        "iteration#1",
        "execution#1",
        "review#1",
        "iteration#2",
        "review#2",
        None,  # iterations exhausted: the work ends even though review asked for changes
    ]
    assert phases.iterations_left(team.state, team.settings) == 0
    assert [r.phase for r in team.state.history][-1] == "review"
    assert not team.state.is_active


def test_an_approved_review_finishes():
    team = Team()
    for _ in range(3):
        team.step()
    assert team.step("approved") is None


def test_transitions_refuse_an_active_phase_and_completing_nothing():
    team = Team()
    with pytest.raises(ProtocolViolation, match="no phase is active"):
        phases.complete_phase(team.state)
    team.step()
    with pytest.raises(ProtocolViolation, match="'planning' is still active"):
        phases.next_phase(team.state)


def test_stray_completion_is_ignored_and_expected_duration_is_recorded():
    team = Team()
    team.step()
    team.add(PhaseCompleted(phase="review"))
    assert team.state.current == "planning"
    last = team.state.last
    assert last is not None and last.expected_s == 1800.0 and last.entered_seq == 1


def test_overdue_after_expected_times_factor_and_force_proceed():
    team = Team(expected_s={"planning": 100.0}, overdue_factor=2.0)
    assert phases.overdue_s(team.state, 5_000.0) == 0.0  # nothing active
    team.step()  # entered at ts 1000
    assert not phases.is_overdue(team.state, 1_200.0, team.settings)
    assert phases.is_overdue(team.state, 1_200.5, team.settings)
    assert phases.overdue_s(team.state, 1_250.0, team.settings) == pytest.approx(50.0)
    forced = phases.force_proceed(team.state, "scout stalled")
    assert (forced.phase, forced.outcome, forced.reason) == ("planning", "forced", "scout stalled")
    team.add(forced)
    assert team.step() == "execution#0"


def test_overdue_uses_settings_when_the_event_has_no_expectation():
    state = phases.project([PhaseEntered(phase="review", seq=1, ts=0.0)])
    assert phases.is_overdue(state, 3_601.0)  # 1800 s x 2
    assert not phases.is_overdue(state, 3_599.0)


# Deadlock


def test_find_cycle():
    assert find_cycle({}) is None
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) is None
    assert find_cycle({"a": ["a"]}) == ["a", "a"]
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    # a dependency outside the graph is not a cycle; a diamond is not a cycle
    assert find_cycle({"a": ["x", "b", "c"], "b": ["d"], "c": ["d"], "d": []}) is None
    # the cycle is reported where it closes, deterministically
    graph = {"root": ["m"], "m": ["n"], "n": ["p"], "p": ["m"]}
    assert find_cycle(graph) == ["m", "n", "p", "m"]


def test_find_cycle_is_iterative():
    n = 50_000
    chain = {f"t{i}": [f"t{i + 1}"] for i in range(n)}
    chain[f"t{n}"] = []
    assert find_cycle(chain) is None
    chain[f"t{n}"] = ["t0"]
    cycle = find_cycle(chain)
    assert cycle is not None and len(cycle) == n + 2 and cycle[0] == cycle[-1] == "t0"
