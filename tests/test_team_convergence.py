"""Convergence rules on hand-built positions: order, ties, missing voters, trust extremes."""

from __future__ import annotations

import pytest

from swarmlog.team.convergence import ABSENT, evaluate, majority, tally
from swarmlog.team.settings import ConvergenceSettings

SEVEN = ("director", "architect", "scout", "builder", "refactorer", "inspector", "scribe")
EQUAL = dict.fromkeys(SEVEN, 7.0)


def votes(approve: int, reject: int = 0, agents: tuple[str, ...] = SEVEN) -> dict[str, str]:
    out = {a: "approve" for a in agents[:approve]}
    out.update({a: "reject" for a in agents[approve : approve + reject]})
    return out


def test_unanimous_stops_at_once_even_in_the_first_round():
    v = evaluate([votes(7)], SEVEN, EQUAL)
    assert (v.converged, v.rule, v.stance, v.dissent) == (True, "unanimous", "approve", ())
    assert v.tally == {"approve": 49.0}


def test_five_of_seven_is_a_supermajority_and_dissent_is_recorded():
    v = evaluate([votes(5, 2)], SEVEN, EQUAL)
    assert (v.rule, v.stance) == ("supermajority", "approve")
    assert v.share == pytest.approx(5 / 7)
    assert v.dissent == ("inspector", "scribe")  # the two reject voters, sorted


def test_four_of_seven_is_not_enough():
    v = evaluate([votes(4, 3)], SEVEN, EQUAL)
    assert not v.converged and v.rule == "" and v.stance == "approve"


def test_threshold_is_strict():
    seven_of_ten = {f"a{i}": "approve" if i < 7 else "reject" for i in range(10)}
    v = evaluate([seven_of_ten], sorted(seven_of_ten), {})  # 0.7 exactly is not > 0.7
    assert not v.converged
    v = evaluate([seven_of_ten], sorted(seven_of_ten), {}, ConvergenceSettings(supermajority=0.69))
    assert v.rule == "supermajority"


def test_missing_voters_count_against_unanimity_and_in_the_denominator():
    present = {a: "approve" for a in SEVEN[:4]}  # four agree, three silent
    v = evaluate([present], SEVEN, EQUAL)
    assert not v.converged
    assert v.absent == SEVEN[4:]
    assert v.tally == {ABSENT: 21.0, "approve": 28.0}
    five = {a: "approve" for a in SEVEN[:5]}
    v = evaluate([five], SEVEN, EQUAL)
    assert (v.rule, v.dissent, v.absent) == ("supermajority", (), ("inspector", "scribe"))


def test_without_declared_participants_the_voters_are_the_electorate():
    v = evaluate([{"builder": "approve", "inspector": "approve"}], (), {})
    assert v.rule == "unanimous"


def test_trust_extremes_outweigh_head_counts():
    positions = {"builder": "approve", "inspector": "reject", "refactorer": "reject"}
    trust = {"builder": 10.0, "inspector": 1.0, "refactorer": 1.0}
    v = evaluate([positions], tuple(positions), trust)
    assert (v.rule, v.stance, v.dissent) == (
        "supermajority",
        "approve",
        ("inspector", "refactorer"),
    )
    assert v.share == pytest.approx(10 / 12)
    # with equal trust the same votes are a 2:1 majority for reject, short of a supermajority
    v = evaluate([positions], tuple(positions), {})
    assert not v.converged and v.stance == "reject"


def test_zero_total_weight_never_converges_by_weight():
    positions = {"a": "approve", "b": "reject"}
    v = evaluate([positions], ("a", "b"), {"a": 0.0, "b": -3.0})
    assert not v.converged and v.stance == "" and v.share == 0.0


def test_max_rounds_fires_after_the_limit_with_the_plurality_or_a_tie():
    r1 = votes(4, 3)
    r2 = votes(3, 4)
    r3 = votes(4, 3)
    v = evaluate([r1, r2, r3], SEVEN, EQUAL)
    assert (v.rule, v.stance) == ("max_rounds", "approve")
    tie = {"a": "approve", "b": "reject"}
    v = evaluate([tie, {"a": "reject", "b": "approve"}], ("a", "b"), {}, max_rounds=2)
    assert (v.rule, v.stance, v.dissent) == ("max_rounds", "", ())


def test_supermajority_beats_max_rounds_and_unanimity_beats_both():
    v = evaluate([votes(4, 3), votes(4, 3), votes(6, 1)], SEVEN, EQUAL)
    assert v.rule == "supermajority"
    v = evaluate([votes(4, 3), votes(4, 3), votes(7)], SEVEN, EQUAL)
    assert v.rule == "unanimous"


def test_stable_stops_with_the_majority():
    v = evaluate([votes(4, 3), votes(4, 3)], SEVEN, EQUAL)
    assert (v.rule, v.stance, v.change) == ("stable", "approve", 0.0)
    assert v.dissent == ("inspector", "refactorer", "scribe")


def test_stable_on_a_tie_continues():
    tie = {"a": "approve", "b": "reject"}
    v = evaluate([tie, tie], ("a", "b"), {})
    assert not v.converged


def test_stable_can_be_switched_off_then_diminishing_returns_catches_it():
    v = evaluate([votes(4, 3), votes(4, 3)], SEVEN, EQUAL, ConvergenceSettings(stable=False))
    assert v.rule == "diminishing_returns"
    off = ConvergenceSettings(stable=False, diminishing_returns=0.0)
    assert not evaluate([votes(4, 3), votes(4, 3)], SEVEN, EQUAL, off).converged


def test_diminishing_returns_when_little_weight_moved():
    electorate = tuple(f"a{i}" for i in range(20))
    before = {a: "approve" if i < 12 else "reject" for i, a in enumerate(electorate)}
    after = {**before, "a12": "approve"}  # one of twenty moved: change 0.05 < 0.1
    v = evaluate([before, after], electorate, {})
    assert (v.rule, v.stance) == ("diminishing_returns", "approve")
    assert v.change == pytest.approx(0.05)
    # one of seven moving (0.143) is not diminishing
    v = evaluate([votes(4, 3), votes(3, 4)], SEVEN, EQUAL)
    assert not v.converged and v.change == pytest.approx(1 / 7)


def test_first_round_has_no_history_rules():
    v = evaluate([votes(4, 3)], SEVEN, EQUAL, max_rounds=3)
    assert not v.converged and v.change == 1.0
    assert not evaluate([], SEVEN, EQUAL).converged


def test_tally_and_majority_helpers():
    weights = tally({"a": "x", "b": "y"}, ("a", "b", "c"), {"a": 2.0}, default_trust=1.0)
    assert weights == {ABSENT: 1.0, "x": 2.0, "y": 1.0}
    assert majority(weights) == "x"
    assert majority({"x": 1.0, "y": 1.0}) == ""
    assert majority({ABSENT: 5.0}) == ""
