"""Team settings: the seed's defaults, and errors that name the key path and the bad value."""

from __future__ import annotations

import pytest

from swarmlog.errors import ConfigError
from swarmlog.team.settings import DEFAULT_SETTINGS, TeamSettings, team_settings


def test_defaults_are_the_seeds():
    s = team_settings()
    assert s == DEFAULT_SETTINGS == team_settings({}) == TeamSettings()
    assert (s.review.supermajority, s.review.max_rounds, s.review.stable) == (0.7, 3, True)
    t = s.trust
    assert (t.start, t.min, t.max, t.emergency_below) == (7.0, 1.0, 10.0, 3.0)
    assert (t.critical_bug, t.first_round_approval, t.timeout, t.invalid_reply) == (
        -2.0,
        1.0,
        -1.0,
        -1.0,
    )
    assert (s.phases.max_concurrent, s.phases.max_iterations, s.phases.overdue_factor) == (
        2,
        3,
        2.0,
    )
    assert set(s.phases.expected_s) == {"planning", "execution", "review", "iteration"}
    assert s.context.budget_for("builder") == 8000


def test_partial_tables_keep_other_defaults():
    s = team_settings({"review": {"supermajority": 0.8}, "context": {"per_agent": {"scout": 2000}}})
    assert s.review.supermajority == 0.8 and s.review.max_rounds == 3
    assert s.context.budget_for("scout") == 2000 and s.context.budget_for("builder") == 8000


@pytest.mark.parametrize(
    ("table", "path", "value"),
    [
        ({"review": {"supermajority": "most"}}, "[team].review.supermajority:", "'most'"),
        ({"review": {"supermajority": 1.5}}, "[team].review.supermajority:", "1.5"),
        ({"review": {"supermajorty": 0.8}}, "[team].review.supermajorty:", "0.8"),
        ({"trust": {"start": 11}}, "[team].trust.start:", "11"),
        ({"phases": {"max_concurrent": 0}}, "[team].phases.max_concurrent:", "0"),
        ({"phases": {"expected_s": {"lunch": 60}}}, "[team].phases.expected_s:", "'lunch'"),
        (
            {"topology": {"rules": [{}, {"types": ["SHOUT"]}]}},
            "[team].topology.rules[1].types:",
            "'SHOUT'",
        ),
        ({"checkpoints": {"triggers": ["hourly"]}}, "[team].checkpoints.triggers:", "'hourly'"),
        ({"review": 3}, "[team].review:", "3"),
    ],
)
def test_errors_name_the_key_path_and_the_value(table, path, value):
    with pytest.raises(ConfigError) as info:
        team_settings(table)
    message = str(info.value)
    assert message.startswith(path), message
    assert value in message and "\n" not in message
    assert "swarmlog config check" in message
