"""Config loading: the seed's example, defaults, errors naming file, key path and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmlog.cli import main
from swarmlog.config import ConfigInvalid, config_digest, load_config
from swarmlog.errors import ConfigError
from swarmlog.routing.profile import parse_duration, router_config

SEED = """
[models.fast]
endpoint = "http://localhost:8001/v1"
model = "Qwen/Qwen3.5-1.5B"
capabilities = ["syntax", "format", "lint"]

[models.deep]
endpoint = "http://localhost:8002/v1"
model = "Qwen/Qwen3.5-32B"
capabilities = ["architecture", "refactor", "security"]
"""


def test_seed_example_loads_as_written(tmp_path):
    path = tmp_path / "swarmlog.toml"
    path.write_text(SEED)
    cfg = load_config(path)
    assert cfg.models["fast"].api == "openai"  # endpoint ends in /v1
    assert cfg.models["deep"].capabilities == ["architecture", "refactor", "security"]
    assert cfg.limits.max_concurrent == 2
    timeouts = {r: a.timeout_s for r, a in cfg.agents.items()}
    assert timeouts == {
        "director": 120,
        "architect": 180,
        "scout": 300,
        "builder": 900,
        "refactorer": 600,
        "inspector": 600,
        "scribe": 60,
    }
    assert cfg.agents["director"].priority == "highest"
    assert cfg.agents["scribe"].priority == "low"


def test_overrides_merge_with_role_defaults_and_costs_normalise(tmp_path):
    path = tmp_path / "swarmlog.toml"
    path.write_text(
        SEED
        + """
cost_per_1k_tokens = 0.5
keep_alive = "60m"
parallel = 2
[models.local]
endpoint = "http://localhost:11434"
model = "qwen3:32b"
[agents.builder]
model = "deep"
[limits.batching]
max_size = 4
[escalation]
stuck_calls = 4
"""
    )
    cfg = load_config(path)
    assert cfg.models["local"].api == "ollama"
    assert cfg.models["deep"].cost_per_1k_tokens.output == 0.5
    assert cfg.agents["builder"].model == "deep"
    assert cfg.agents["builder"].timeout_s == 900  # default kept
    assert cfg.section("escalation") == {"stuck_calls": 4}
    assert cfg.section("limits")["batching"]["max_size"] == 4
    rc = router_config(cfg.to_event_dict())
    deep = rc.profile("deep")
    assert deep is not None and deep.keep_alive_s == 3600 and deep.slots == 2


def test_errors_name_file_key_path_and_value(tmp_path):
    path = tmp_path / "swarmlog.toml"
    path.write_text(SEED + 'parallel = 0\ntypo_key = 1\n[agents.builder]\ntimeout_s = "soon"\n')
    with pytest.raises(ConfigInvalid) as info:
        load_config(path)
    problems = info.value.problems
    assert any(str(path) in p and "models.deep.parallel = 0" in p for p in problems)
    assert any("models.deep.typo_key" in p and "unknown key" in p for p in problems)
    assert any("agents.builder.timeout_s = 'soon'" in p for p in problems)


def test_unknown_model_reference_and_missing_file(tmp_path):
    path = tmp_path / "swarmlog.toml"
    path.write_text(SEED + '[agents.scout]\nmodel = "huge"\n')
    with pytest.raises(ConfigInvalid, match=r"agents\.scout\.model = 'huge'.*known: deep, fast"):
        load_config(path)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "absent.toml")
    assert load_config(tmp_path / "absent.toml", missing_ok=True).models == {}


def test_digest_is_stable_and_sensitive(tmp_path):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(SEED)
    b.write_text(SEED.replace('"lint"]', '"lint", "typecheck"]'))
    assert config_digest(load_config(a)) == config_digest(load_config(a))
    assert config_digest(load_config(a)) != config_digest(load_config(b))


def test_parse_duration():
    assert parse_duration("60m") == 3600
    assert parse_duration(30) == 30
    assert parse_duration("-1") == float("inf")
    with pytest.raises(ValueError, match="'soon'"):
        parse_duration("soon")


def test_config_check_command(tmp_path, capsys):
    (tmp_path / "swarmlog.toml").write_text(SEED)
    assert main(["config", "check", "--dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("OK:")
    (tmp_path / "swarmlog.toml").write_text(SEED + "parallel = -3\n")
    assert main(["config", "check", "--dir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # errors go to stderr, each on its own line
    assert (
        captured.err.startswith("swarmlog: error: ") and "models.deep.parallel = -3" in captured.err
    )
    (tmp_path / "swarmlog.toml").write_text("[models\n")
    assert main(["config", "check", "--dir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "not valid TOML" in captured.err and captured.err.count("\n") == 1
    (tmp_path / "swarmlog.toml").write_text("[models\n")
    assert main(["config", "check", "--dir", str(tmp_path), "--json"]) == 1
    assert "not valid TOML" in capsys.readouterr().out


def test_sections_owned_by_the_rules_are_validated_with_their_key_paths(tmp_path: Path) -> None:
    path = tmp_path / "swarmlog.toml"
    path.write_text(
        '[team.review]\nsupermajority = "high"\n'
        "[escalation]\nanything = 1\n"
        '[[alerts.webhooks]]\nname = "x"\nurl = "ftp://nope"\n'
    )
    with pytest.raises(ConfigInvalid) as err:
        load_config(path)
    problems = "\n".join(err.value.problems)
    assert "[team].review.supermajority" in problems and "'high'" in problems
    assert "[escalation]" in problems and "anything" in problems
    assert "[alerts].webhooks[0]" in problems and "ftp://nope" in problems


def test_escalation_numbers_are_range_checked_naming_file_key_value_and_range(tmp_path: Path):
    path = tmp_path / "swarmlog.toml"
    path.write_text(
        "[escalation]\nmemory_percent = 150\ntrust_below = -1\nstuck_calls = 3\n"
        "[escalation.budget]\ncost = -0.5\n"
    )
    with pytest.raises(ConfigInvalid) as err:
        load_config(path)
    problems = err.value.problems
    assert (
        f"{path}: escalation.memory_percent = 150: out of range; "
        "allowed: 0 to 100 (a percentage of RAM)"
    ) in problems
    assert any("escalation.trust_below = -1" in p and "0 to 10" in p for p in problems)
    assert any("escalation.budget.cost = -0.5" in p and "0 or more" in p for p in problems)
    assert not any("stuck_calls" in p for p in problems)
    path.write_text("[escalation]\nmemory_percent = 100\nconflict_disagreement = 0.0\n")
    assert load_config(path).section("escalation")["memory_percent"] == 100


def test_an_unknown_webhook_kind_lists_the_allowed_kinds_in_the_usual_key_path_style(
    tmp_path: Path,
):
    path = tmp_path / "swarmlog.toml"
    path.write_text(
        '[[alerts.webhooks]]\nname = "ok"\nurl = "https://ntfy.sh/x"\nkind = "ntfy"\n'
        '[[alerts.webhooks]]\nname = "t"\nurl = "https://example.com/h"\nkind = "teams"\n'
        "min_level = 9\n"
    )
    with pytest.raises(ConfigInvalid) as err:
        load_config(path)
    problems = err.value.problems
    assert problems[0] == (
        f"{path}: alerts.webhooks.1.kind = 'teams': unknown webhook kind; "
        "allowed: 'json', 'ntfy', 'slack'"
    )
    assert any("alerts.webhooks.1.min_level = 9" in p and "1 to 4" in p for p in problems)
    assert not any("[alerts].webhooks[1].kind" in p for p in problems)  # said once


@pytest.mark.parametrize(
    "endpoint", ["localhost:11434", "ftp://host/x", "http://", "sim", "http://h:99999"]
)
def test_a_model_endpoint_must_be_an_http_url(tmp_path: Path, endpoint: str):
    path = tmp_path / "swarmlog.toml"
    path.write_text(f'[models.m]\nendpoint = "{endpoint}"\nmodel = "x"\napi = "sim"\n')
    with pytest.raises(ConfigInvalid) as err:
        load_config(path)
    (problem,) = err.value.problems
    assert problem.startswith(f"{path}: models.m.endpoint = {endpoint!r}: must be an http(s) URL")


def test_http_endpoints_of_every_api_load(tmp_path: Path):
    path = tmp_path / "swarmlog.toml"
    path.write_text(
        '[models.a]\nendpoint = "http://127.0.0.1:11434"\nmodel = "x"\napi = "sim"\n'
        '[models.b]\nendpoint = "https://api.anthropic.com"\nmodel = "c"\napi = "anthropic"\n'
        '[models.c]\nendpoint = "http://[::1]:8000/v1"\nmodel = "v"\n'
    )
    assert load_config(path).models["c"].api == "openai"


def test_model_and_section_errors_are_listed_together(tmp_path: Path):
    path = tmp_path / "swarmlog.toml"
    path.write_text(
        '[models.m]\nendpoint = "nowhere"\nmodel = "x"\n[escalation]\nvram_percent = 101\n'
    )
    with pytest.raises(ConfigInvalid) as err:
        load_config(path)
    text = "\n".join(err.value.problems)
    assert "models.m.endpoint = 'nowhere'" in text and "escalation.vram_percent = 101" in text
