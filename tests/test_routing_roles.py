"""``[agents.ROLE]`` settings in routing and tools: model pin, priority, max_concurrent, tools."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from swarmlog import replay
from swarmlog.cli import main
from swarmlog.config import parse_config
from swarmlog.events import (
    ConfigLoaded,
    Event,
    RunStarted,
    TaskCompleted,
    TaskFailed,
    TaskRouted,
    TaskSubmitted,
)
from swarmlog.routing import choose_route, project, rederive_route
from swarmlog.runtime.board import project_board
from swarmlog.runtime.dispatch import Dispatcher
from swarmlog.runtime.tools import ToolError, check_tool, run_tests, write_files

MODELS: dict[str, dict[str, Any]] = {
    "fast": {
        "endpoint": "http://127.0.0.1:8001/v1",
        "model": "small",
        "capabilities": ["syntax", "format", "lint"],
        "parallel": 4,
        "decode_tps": 100.0,
    },
    "deep": {
        "endpoint": "http://127.0.0.1:8002/v1",
        "model": "big",
        "capabilities": ["architecture", "refactor", "security", "lint", "format", "syntax"],
        "parallel": 4,
        "decode_tps": 20.0,
    },
}


def _config(agents: dict[str, Any]) -> dict[str, Any]:
    """The config as ``config_loaded`` records it (validated, role defaults merged)."""
    return parse_config({"models": MODELS, "agents": agents}).to_event_dict()


def _stamp(events: list[Any]) -> list[Event]:
    return [msgspec.structs.replace(e, seq=n, ts=1000.0 + n) for n, e in enumerate(events, start=1)]


class Run:
    """A dispatcher and its board, fed the same events; every decision appended as made."""

    def __init__(self, agents: dict[str, Any]) -> None:
        self.events: list[Event] = []
        self.dispatch = Dispatcher()
        self.add(RunStarted(goal="g", run="r"), ConfigLoaded(config=_config(agents)))

    def add(self, *events: Any) -> list[Event]:
        stamped = [
            msgspec.structs.replace(e, seq=len(self.events) + n, ts=1000.0 + len(self.events) + n)
            for n, e in enumerate(events, start=1)
        ]
        for e in stamped:
            self.events.append(e)
            self.dispatch.observe(e)
        return stamped

    def submit(self, task_id: str, role: str, kind: str = "lint") -> None:
        self.add(TaskSubmitted(task_id=task_id, title=task_id, task_kind=kind, role=role))

    def route(self) -> list[Any]:
        board = project_board(self.events)
        made = self.dispatch.decisions(board, after_seq=len(self.events), ts=2000.0)
        for e in made:
            self.events.append(e)
            self.dispatch.observe(e)
        return made


# model pin


def test_a_pinned_role_is_routed_only_to_its_model_and_the_others_say_why() -> None:
    events = _stamp(
        [
            ConfigLoaded(config=_config({"builder": {"model": "deep"}})),
            TaskSubmitted(task_id="b1", title="b1", task_kind="lint", role="builder"),
            TaskSubmitted(task_id="s1", title="s1", task_kind="lint", role="scout"),
        ]
    )
    state = project(events)
    pinned = choose_route(state, state.pending["b1"])
    assert pinned.model == "deep"  # a lint task would go to fast without the pin
    fast = next(c for c in pinned.candidates if c.model == "fast")
    assert not fast.eligible
    assert fast.reason == "role builder is pinned to model deep ([agents.builder].model)"
    assert choose_route(state, state.pending["s1"]).model == "fast"  # other roles unaffected
    routed = msgspec.structs.replace(pinned, seq=len(events) + 1, ts=events[-1].ts)
    assert rederive_route(state, routed) is None


def test_a_pinned_model_without_the_capability_fails_the_task_instead_of_waiting() -> None:
    run = Run({"architect": {"model": "fast"}})
    run.submit("a1", "architect", kind="architecture")
    (failed,) = run.route()
    assert isinstance(failed, TaskFailed) and not failed.retryable
    assert "pinned to model fast" in failed.error


def test_route_explain_shows_the_pin_filter(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    (tmp_path / "swarmlog.toml").write_text(
        '[models.fast]\nendpoint = "http://localhost:8001/v1"\nmodel = "s"\n'
        'capabilities = ["lint"]\n'
        '[models.deep]\nendpoint = "http://localhost:8002/v1"\nmodel = "b"\n'
        '[agents.builder]\nmodel = "deep"\n'
    )
    args = ["route", "--dir", str(tmp_path), "--task-kind", "lint", "--explain"]
    assert main([*args, "--role", "builder"]) == 0
    out = capsys.readouterr().out
    assert "-> deep" in out
    assert "fast             filtered: role builder is pinned to model deep" in out
    assert main(args) == 0
    assert "-> fast" in capsys.readouterr().out


# priority


def test_higher_priority_roles_are_routed_first_and_ties_keep_submission_order() -> None:
    run = Run({})  # the seed's table: director highest, architect high, scribe low
    for task_id, role in [
        ("s1", "scribe"),
        ("b1", "builder"),
        ("d1", "director"),
        ("b2", "builder"),
        ("a1", "architect"),
        ("x1", ""),
    ]:
        run.submit(task_id, role)
    order = [e.task_id for e in run.route()]
    assert order == ["d1", "a1", "b1", "b2", "x1", "s1"]
    assert replay.verify(run.events) == []


def test_configured_priority_overrides_the_default() -> None:
    run = Run({"scribe": {"priority": "highest"}, "director": {"priority": "low"}})
    run.submit("d1", "director")
    run.submit("s1", "scribe")
    assert [e.task_id for e in run.route()] == ["s1", "d1"]


# max_concurrent


def test_a_roles_max_concurrent_holds_its_further_tasks_back_until_one_finishes() -> None:
    run = Run({"builder": {"max_concurrent": 2}})
    for i in range(4):
        run.submit(f"b{i}", "builder")
    run.submit("s0", "scout")
    first = run.route()
    assert [e.task_id for e in first] == ["b0", "b1", "s0"]  # b2, b3 wait (not fail)
    assert all(isinstance(e, TaskRouted) for e in first)
    assert run.route() == []
    run.add(TaskCompleted(task_id="b0", agent="builder"))
    assert [e.task_id for e in run.route()] == ["b2"]
    run.add(TaskFailed(task_id="b1", agent="builder", error="x", retryable=True))
    # b1 is retryable: back in the queue, routed before b3 (submission order)
    assert [e.task_id for e in run.route()] == ["b1"]
    assert replay.verify(run.events) == []


def test_without_max_concurrent_a_role_is_not_capped() -> None:
    run = Run({})
    for i in range(5):
        run.submit(f"b{i}", "builder")
    assert len(run.route()) == 5


# tools


def test_a_denied_tool_is_refused_naming_the_setting_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    policy = {"tools_allow": [], "tools_deny": ["file_write"]}
    with pytest.raises(
        ToolError, match=r"refused tool 'file_write'.*\[agents\.scout\]\.tools_deny"
    ):
        write_files(work, {"a.py": "x = 1\n"}, policy=policy, role="scout")
    assert not (work / "a.py").exists()
    assert write_files(work, {"a.py": "x = 1\n"}, policy={"tools_deny": ["web_search"]}) == ["a.py"]


def test_a_tool_missing_from_a_non_empty_allow_list_is_refused(tmp_path: Path) -> None:
    cmd = {"test_command": f"{sys.executable} -c 'print(1)'"}
    with pytest.raises(ToolError, match=r"not in \[agents\.refactorer\]\.tools_allow"):
        run_tests(cmd, tmp_path, policy={"tools_allow": ["file_read"]}, role="refactorer")
    # the seed's Builder has "all file/code tools": code covers running the tests
    assert run_tests(cmd, tmp_path, policy={"tools_allow": ["code"]})["passed"] is True
    assert run_tests(cmd, tmp_path, policy={"tools_allow": []})["passed"] is True
    with pytest.raises(ToolError, match="tools_deny lists 'code'"):
        check_tool("test_runner", {"tools_deny": ["code"]}, "builder")


def test_the_default_role_tables_allow_what_the_roles_do() -> None:
    agents = _config({})["agents"]
    check_tool("file_write", agents["builder"], "builder")
    check_tool("test_runner", agents["builder"], "builder")
    check_tool("test_runner", agents["inspector"], "inspector")
    check_tool("file_write", agents["scribe"], "scribe")
    with pytest.raises(ToolError):
        check_tool("file_write", agents["inspector"], "inspector")


# pre-flight: every role must have a model that can take its tasks


def test_every_role_is_served_by_the_default_tables_and_every_scenario() -> None:
    from swarmlog.defaults import ROLES
    from swarmlog.routing.roles import unserved_roles
    from swarmlog.sim.scenarios import SCENARIOS
    from swarmlog.sim.scenarios.launch import fleet_config

    assert unserved_roles(_config({}), ROLES) == []
    for name, scenario in SCENARIOS.items():
        urls = {p.server: "http://127.0.0.1:9" for p in scenario.profiles}
        config = parse_config(fleet_config(scenario, urls)).to_event_dict()
        assert unserved_roles(config, ROLES) == [], name


def test_a_role_no_model_can_serve_is_named_with_what_it_needs_and_what_to_change() -> None:
    from swarmlog.defaults import ROLES
    from swarmlog.routing.roles import unserved_roles

    config = _config({"director": {"capabilities": ["director"]}, "scout": {"model": "fast"}})
    config["agents"]["scout"]["capabilities"] = ["research"]
    assert unserved_roles(config, ROLES) == [
        "agents.director: no [models.*] profile has the capabilities it needs (director); "
        "profiles offer deep: architecture, refactor, security, lint, format, syntax; "
        "fast: syntax, format, lint; add them to a profile's capabilities or change "
        "agents.director.capabilities",
        "agents.scout: its pinned model 'fast' lacks capabilities it needs (needs research; "
        "fast has syntax, format, lint); pin another model or change agents.scout.capabilities",
    ]
    nothing = parse_config({}).to_event_dict()
    (only,) = unserved_roles(nothing, ROLES)
    assert only.startswith("no [models.*] profile is configured")


def test_run_refuses_a_night_whose_director_no_model_can_serve(tmp_path: Path, capsys) -> None:
    (tmp_path / "swarmlog.toml").write_text(
        '[models.fast]\nendpoint = "http://127.0.0.1:9/v1"\nmodel = "s"\n'
        'capabilities = ["lint"]\n'
        '[agents.director]\ncapabilities = ["director"]\n'
    )
    assert main(["run", "--dir", str(tmp_path), "Add auth"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "agents.director: no [models.*] profile" in err[0]
    events = tmp_path / "memory" / "events"
    assert not any(events.glob("*.ndjson"))  # no run was started


def test_route_applies_the_roles_capabilities_as_the_scheduler_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "swarmlog.toml").write_text(
        '[models.fast]\nendpoint = "http://localhost:8001/v1"\nmodel = "s"\n'
        'capabilities = ["lint"]\n'
        '[models.big]\nendpoint = "http://localhost:8002/v1"\nmodel = "b"\n'
        'capabilities = ["lint", "director"]\n'
        '[agents.director]\ncapabilities = ["director"]\n'
    )
    args = ["route", "--dir", str(tmp_path), "--task-kind", "lint", "--explain"]
    assert main([*args, "--role", "director"]) == 0
    out = capsys.readouterr().out
    assert "-> big" in out and "needs director, lint" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--sim", "demo", "--workers", "nosuch=2"], "no role 'nosuch'"),
        (["run", "--sim", "demo", "--time-scale", "-1"], "not a positive number"),
        (["agent", "--role", "nosuch"], "invalid choice: 'nosuch'"),
    ],
)
def test_run_options_are_checked_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["--dir", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "memory").exists()  # nothing started, nothing written


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[agents.buidler]\ntimeout_s = 5\n", "[agents.buidler] names no role; did you mean"),
        ('[log]\nbackend = "zfs"\n', "log.backend = 'zfs': unknown log backend"),
        ('[agents.director]\ncapabilities = ["director"]\n', "agents.director: no [models.*]"),
    ],
)
def test_config_check_and_doctor_refuse_what_would_stop_the_night(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, message: str
) -> None:
    models = '[models.fast]\nendpoint = "http://127.0.0.1:9/v1"\nmodel = "s"\n'
    (tmp_path / "swarmlog.toml").write_text(models + 'capabilities = ["lint"]\n' + toml)
    assert main(["config", "check", "--dir", str(tmp_path)]) == 1
    assert message in capsys.readouterr().err
    assert main(["doctor", "--dir", str(tmp_path), "--json", "--timeout", "0.2"]) == 1
    out = capsys.readouterr()
    assert message in out.out + out.err
