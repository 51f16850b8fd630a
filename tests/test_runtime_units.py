"""The runtime's pure pieces and edges: the dispatch board, reply validation, tools, exec agents."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from swarmlog.events import (
    ConfigLoaded,
    Event,
    Heartbeat,
    ModelCallFinished,
    RunStarted,
    TaskClaimed,
    TaskCompleted,
    TaskFailed,
    TaskRouted,
    TaskSubmitted,
    TaskTimedOut,
)
from swarmlog.log import FileLog
from swarmlog.runtime.agent import AgentProcess, CallOutcome, ModelCaller, exec_caller
from swarmlog.runtime.board import (
    EMPTY_BOARD,
    TaskView,
    claimable,
    expired_leases,
    project_board,
    ready_to_route,
)
from swarmlog.runtime.replies import parse_reply
from swarmlog.runtime.tools import ToolError, resolve_inside, run_tests, write_files


def _stamp(events: list[Event]) -> list[Event]:
    import msgspec

    return [
        msgspec.structs.replace(e, seq=n, ts=1000.0 + n)  # type: ignore[misc]
        for n, e in enumerate(events, start=1)
    ]


def _base(slots: int = 1, cap: int = 0) -> list[Event]:
    config = {"models": {"fast": {"parallel": slots}}, "limits": {"max_concurrent": cap}}
    return [
        RunStarted(goal="g", run="r"),
        ConfigLoaded(config=config),
        TaskSubmitted(task_id="a", title="A", role="builder"),
        TaskSubmitted(task_id="b", title="B", role="builder", deps=("a",)),
        TaskSubmitted(task_id="c", title="C", role="builder"),
    ]


def test_dependencies_gate_routing() -> None:
    board = project_board(_stamp(_base()))
    assert [t.task_id for t in ready_to_route(board)] == ["a", "c"]
    board = project_board(
        _stamp(
            [
                *_base(),
                TaskRouted(task_id="a", model="fast"),
                TaskClaimed(task_id="a", agent="builder", lease_until=2000.0),
                TaskCompleted(task_id="a", agent="builder"),
            ]
        )
    )
    assert [t.task_id for t in ready_to_route(board)] == ["b", "c"]


def test_first_live_claim_wins_and_a_rival_claim_is_void() -> None:
    board = project_board(
        _stamp(
            [
                *_base(slots=2),
                TaskRouted(task_id="a", model="fast"),
                TaskClaimed(task_id="a", agent="builder", lease_until=2000.0),
                TaskClaimed(task_id="a", agent="builder-2", lease_until=2000.0),
            ]
        )
    )
    assert board.tasks["a"].agent == "builder"


def test_a_claim_beyond_the_models_slots_is_void() -> None:
    board = project_board(
        _stamp(
            [
                *_base(slots=1),
                TaskRouted(task_id="a", model="fast"),
                TaskRouted(task_id="c", model="fast"),
                TaskClaimed(task_id="a", agent="builder", lease_until=2000.0),
                TaskClaimed(task_id="c", agent="builder-2", lease_until=2000.0),
            ]
        )
    )
    assert board.tasks["a"].status == "claimed"
    assert board.tasks["c"].status == "routed"  # waits for the slot
    assert claimable(board, "builder", now=1010.0) == []


def test_the_run_wide_cap_bounds_claims_across_models() -> None:
    events = _base(slots=4, cap=1)
    board = project_board(
        _stamp(
            [
                *events,
                TaskRouted(task_id="a", model="fast"),
                TaskRouted(task_id="c", model="other"),
                TaskClaimed(task_id="a", agent="builder", lease_until=2000.0),
                TaskClaimed(task_id="c", agent="builder-2", lease_until=2000.0),
            ]
        )
    )
    assert board.tasks["c"].status == "routed"


def test_heartbeats_extend_a_lease_and_an_expired_lease_returns_the_task() -> None:
    board = project_board(
        _stamp(
            [
                *_base(),
                TaskRouted(task_id="a", model="fast"),
                TaskClaimed(task_id="a", agent="builder", lease_until=1010.0),
                Heartbeat(agent="builder", task_id="a", lease_until=1050.0),
            ]
        )
    )
    assert board.tasks["a"].lease_until == 1050.0
    assert expired_leases(board, now=1049.0) == []
    assert [t.task_id for t in expired_leases(board, now=1051.0)] == ["a"]
    board = project_board(_stamp([TaskTimedOut(task_id="a", agent="builder")]), board)
    assert board.tasks["a"].status == "submitted"  # back in the pool for another attempt


def test_failures_retry_until_max_attempts_then_fail_for_good() -> None:
    events: list[Event] = list(_base())
    for attempt in (1, 2, 3):
        events += [
            TaskRouted(task_id="c", model="fast"),
            TaskClaimed(task_id="c", agent="builder", lease_until=9999.0, attempt=attempt),
            TaskFailed(task_id="c", agent="builder", attempt=attempt, error="boom"),
        ]
    board = project_board(_stamp(events))
    assert board.tasks["c"].status == "failed"
    assert board.tasks["c"].attempt == 3
    # Nothing after a final state changes the task: a late result is ignored.
    board = project_board(_stamp([TaskCompleted(task_id="c", agent="builder")]), board)
    assert board.tasks["c"].status == "failed"


def test_a_new_run_starts_an_empty_board_and_resuming_keeps_it() -> None:
    board = project_board(_stamp(_base()))
    resumed = project_board(_stamp([RunStarted(goal="g", run="r", resumed=True)]), board)
    assert set(resumed.tasks) == {"a", "b", "c"}
    fresh = project_board(_stamp([RunStarted(goal="g2", run="r2")]), board)
    assert fresh.tasks == {} and fresh.slots == {"fast": 1}
    assert EMPTY_BOARD.tasks == {}


@pytest.mark.parametrize(
    ("kind", "text", "problem"),
    [
        ("implement", "not json at all", "reply is not JSON"),
        ("critique", '{"stance": "maybe"}', "reply field stance"),
        ("critique", '{"stance": "approve", "confidence": 3}', "reply field confidence"),
        ("plan", '{"summary": "x", "tasks": []}', "reply field tasks"),
    ],
)
def test_invalid_replies_get_a_one_line_reason_for_the_model(
    kind: str, text: str, problem: str
) -> None:
    data, error = parse_reply(kind, text)
    assert data is None
    assert error.startswith(problem)
    assert "\n" not in error


def test_a_fenced_json_reply_is_accepted() -> None:
    data, error = parse_reply("implement", 'Here:\n```json\n{"summary": "did it"}\n```')
    assert error == ""
    assert data is not None and data["summary"] == "did it" and data["status"] == "done"


def test_work_and_review_replies_may_raise_an_emergency() -> None:
    data, _ = parse_reply("implement", '{"summary": "done"}')
    assert data is not None and data["emergency"] == ""  # the default: no emergency
    data, _ = parse_reply("critique", '{"stance": "reject", "emergency": "MD5 hashing"}')
    assert data is not None and data["emergency"] == "MD5 hashing"
    data, error = parse_reply("implement", json.dumps({"summary": "s", "emergency": "x" * 2001}))
    assert data is None and "emergency" in error


def test_files_outside_the_work_folder_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    work = tmp_path / "work"
    with pytest.raises(ToolError, match="outside the work folder"):
        write_files(work, {"ok.py": "x = 1\n", "../escape.py": "boom\n"})
    assert not (work / "ok.py").exists()
    assert not (tmp_path / "escape.py").exists()
    with pytest.raises(ToolError):
        resolve_inside(work, "/etc/passwd")
    assert write_files(work, {"pkg/mod.py": "y = 2\n"}) == ["pkg/mod.py"]
    assert (work / "pkg" / "mod.py").read_text() == "y = 2\n"


def test_the_inspectors_test_command_runs_with_a_timeout(tmp_path: Path) -> None:
    ok = run_tests({"test_command": f"{sys.executable} -c 'print(42)'"}, tmp_path)
    assert ok["passed"] is True and "42" in ok["output"]
    bad = run_tests({"test_command": f"{sys.executable} -c 'raise SystemExit(3)'"}, tmp_path)
    assert bad["passed"] is False and bad["exit"] == 3
    slow = run_tests(
        {
            "test_command": f"{sys.executable} -c 'import time; time.sleep(5)'",
            "test_timeout_s": 0.2,
        },
        tmp_path,
    )
    assert slow["passed"] is False and "timed out" in slow["output"]
    assert run_tests({}, tmp_path)["ran"] is False


@pytest.mark.anyio
async def test_an_exec_agent_gets_the_task_on_stdin_and_env_and_replies_on_stdout() -> None:
    from swarmlog.runtime.board import TaskView

    script = (
        "import json, os, sys; prompt = sys.stdin.read(); "
        "print(json.dumps({'summary': os.environ['SWARMLOG_TASK_ID'] + ':' + str(len(prompt))}))"
    )
    call = exec_caller(f'{sys.executable} -c "{script}"', timeout_s=10)
    task = TaskView(task_id="t9", title="T", task_kind="implement", role="builder")
    outcome = await call("exec", {}, task, "hello prompt")
    assert outcome.error == ""
    assert '"summary": "t9:12"' in outcome.text
    assert outcome.events[0].outcome == "ok"  # type: ignore[attr-defined]
    failing = exec_caller(f"{sys.executable} -c 'raise SystemExit(2)'", timeout_s=10)
    bad = await failing("exec", {}, task, "x")
    assert "exited 2" in bad.error


def test_a_plan_with_a_dependency_cycle_is_refused_when_submitted() -> None:
    plan = (
        '{"summary": "s", "tasks": [{"id": "a", "title": "A", "deps": ["c"]},'
        ' {"id": "b", "title": "B", "deps": ["a"]}, {"id": "c", "title": "C", "deps": ["b"]}]}'
    )
    data, error = parse_reply("plan", plan)
    assert data is None
    assert "dependency cycle a -> c -> b -> a" in error
    ok, _ = parse_reply("plan", plan.replace('"deps": ["c"]', '"deps": []'))
    assert ok is not None


def test_the_director_force_proceeds_a_stalled_phase_after_mediating() -> None:
    from swarmlog.escalation import levels
    from swarmlog.events import DetectorFired, EscalationResolved, PhaseEntered, TaskCancelled
    from swarmlog.runtime.context import project_context
    from swarmlog.runtime.flow import FlowView, next_steps
    from swarmlog.team.reviews import EMPTY as NO_REVIEWS

    events: list[Event] = [
        RunStarted(goal="g", run="r"),
        ConfigLoaded(config={}),
        PhaseEntered(phase="execution", iteration=0),
        TaskSubmitted(task_id="w-a", title="A", role="builder", phase="execution#0"),
        TaskSubmitted(task_id="w-b", title="B", role="builder", phase="execution#0"),
        TaskRouted(task_id="w-b", model="fast"),
        TaskClaimed(task_id="w-b", agent="builder", lease_until=9e9),
        TaskCompleted(task_id="w-b", agent="builder"),
        DetectorFired(detector="phase_overrun", level=2, message="execution ran 2x long"),
    ]
    events = _stamp(events)
    esc, raised = levels.step(levels.project(events[:-1]), events[-1])
    assert [e.level for e in raised] == [2]
    eid = raised[0].escalation_id
    mediation = [
        TaskSubmitted(task_id=f"mediate-{eid}", title="meet", role="director", phase="x"),
        TaskRouted(task_id=f"mediate-{eid}", model="director"),
        TaskClaimed(task_id=f"mediate-{eid}", agent="director", lease_until=9e9),
        TaskCompleted(task_id=f"mediate-{eid}", agent="director", output={"decision": "continue"}),
    ]
    events = _stamp([*events, *raised, *mediation])
    view = FlowView(
        board=project_board(events),
        ctx=project_context(events),
        reviews=NO_REVIEWS,
        escalation=levels.project(events),
    )
    steps = next_steps(view, now=2000.0)
    assert any(isinstance(e, EscalationResolved) and e.escalation_id == eid for e in steps)
    cancelled = [e.task_id for e in steps if isinstance(e, TaskCancelled)]
    assert cancelled == ["w-a"]  # the unfinished work of the stalled phase; done work is kept
    assert eid in esc.open  # the emergency was open until the Director's mediation


def test_prompts_carry_scribes_summaries_not_those_of_completed_phases() -> None:
    from swarmlog.events import CheckpointWritten, PhaseEntered
    from swarmlog.runtime.board import TaskView
    from swarmlog.runtime.context import project_context
    from swarmlog.runtime.prompts import render_prompt

    events = _stamp(
        [
            RunStarted(goal="g", run="r"),
            CheckpointWritten(checkpoint_id="c1", trigger="t", summary="OLD planning summary"),
            CheckpointWritten(checkpoint_id="c2", trigger="t", summary="LATEST planning summary"),
            PhaseEntered(phase="execution"),
            CheckpointWritten(checkpoint_id="c3", trigger="t", summary="CURRENT execution note"),
        ]
    )
    task = TaskView(task_id="t", title="T", task_kind="implement", role="builder")
    prompt = render_prompt(
        role="builder", task=task, ctx=project_context(events), board=EMPTY_BOARD, attempt=1
    )
    assert "CURRENT execution note" in prompt
    assert "OLD planning summary" not in prompt  # archived with its phase


async def _work_on(log_dir: Path, call: ModelCaller) -> list[Event]:
    log = FileLog(log_dir)
    log.append(
        [
            RunStarted(goal="g", run="r", actor="t"),
            ConfigLoaded(config={"models": {"fast": {"parallel": 1}}}, run="r", actor="t"),
            TaskSubmitted(task_id="a", title="A", role="builder", run="r", actor="t"),
            TaskRouted(task_id="a", model="fast", run="r", actor="t"),
        ]
    )
    agent = AgentProcess(log, agent="builder", role="builder", call_model=call)
    agent.catch_up()
    task = agent.board.tasks["a"]
    assert agent._claim(task)
    await agent._work(agent.board.tasks["a"])
    return list(log.read())


def _call_record(task: TaskView) -> ModelCallFinished:
    return ModelCallFinished(model="fast", task_id=task.task_id, total_ms=1.0, ttft_ms=1.0)


@pytest.mark.anyio
async def test_a_validated_call_is_stored_in_the_same_append_as_its_result(tmp_path: Path) -> None:
    async def call(
        name: str, profile: dict[str, object], task: TaskView, prompt: str
    ) -> CallOutcome:
        return CallOutcome(text='{"summary": "did it"}', events=[_call_record(task)])

    events = await _work_on(tmp_path / "events", call)
    kinds = [type(e).__name__ for e in events[-3:]]
    assert kinds == ["ModelCallFinished", "TaskCompleted", "AgentStatusChanged"]
    assert len({e.ts for e in events[-3:]}) == 1  # one append stamps one time


@pytest.mark.anyio
async def test_a_stale_result_is_dropped_but_its_call_stays_on_record(tmp_path: Path) -> None:
    folder = tmp_path / "events"

    async def call(
        name: str, profile: dict[str, object], task: TaskView, prompt: str
    ) -> CallOutcome:
        # While the model works, the lease runs out and the scheduler takes the task back.
        FileLog(folder).append([TaskTimedOut(task_id="a", agent="builder", attempt=1, run="r")])
        return CallOutcome(text='{"summary": "too late"}', events=[_call_record(task)])

    events = await _work_on(folder, call)
    assert not [e for e in events if isinstance(e, TaskCompleted)]
    assert [e.task_id for e in events if isinstance(e, ModelCallFinished)] == ["a"]


def test_warm_up_builds_what_a_first_prompt_needs() -> None:
    from swarmlog.runtime import prompts
    from swarmlog.runtime.replies import REPLY_MODELS, WorkReply

    prompts._schema_of.cache_clear()
    prompts.warm_up("builder-2")
    assert prompts._schema_of.cache_info().currsize == len({*REPLY_MODELS.values(), WorkReply})
    # Kinds without a reply model of their own share the worker's schema text.
    assert prompts._schema_text("research") is prompts._schema_text("implement")
    assert prompts._schema_of.cache_info().currsize == len({*REPLY_MODELS.values(), WorkReply})


@pytest.mark.anyio
async def test_the_idle_hook_runs_once_when_there_is_first_nothing_to_do(tmp_path: Path) -> None:
    import asyncio

    log = FileLog(tmp_path / "events")
    log.append([RunStarted(goal="g", run="r", actor="t"), ConfigLoaded(config={}, run="r")])
    calls: list[int] = []

    async def never(name: str, profile: dict[str, object], task: TaskView, prompt: str) -> Any:
        raise AssertionError("no task to call a model for")

    agent = AgentProcess(
        log,
        agent="scout",
        role="scout",
        call_model=never,
        idle_wait_s=0.01,
        on_idle=lambda: calls.append(len(calls)),
    )
    running = asyncio.ensure_future(agent.run())
    await asyncio.sleep(0.2)  # many idle looks at the log
    agent.stop()
    await asyncio.wait_for(running, 5.0)
    assert calls == [0]


def test_tasks_waiting_on_a_task_that_failed_for_good_are_cancelled_down_the_chain() -> None:
    from swarmlog.events import TaskCancelled
    from swarmlog.runtime.context import project_context
    from swarmlog.runtime.flow import FlowView, next_steps
    from swarmlog.team.reviews import EMPTY as NO_REVIEWS

    def step(events: list[Event]) -> list[Event]:
        view = FlowView(
            board=project_board(events), ctx=project_context(events), reviews=NO_REVIEWS
        )
        return [e for e in next_steps(view, now=2000.0) if isinstance(e, TaskCancelled)]

    events: list[Event] = [
        *_base(),
        TaskSubmitted(task_id="d", title="D", role="builder", deps=("b",)),
        TaskFailed(
            task_id="a", agent="scheduler", error="no model can take task 'a'", retryable=False
        ),
    ]
    first = step(_stamp(events))
    # b waits on a, which can never succeed; c has no dependency; d waits on b, still waiting.
    assert [(e.task_id, e.reason) for e in first] == [
        ("b", "its dependency a failed; it can never run")
    ]
    second = step(_stamp([*events, *first]))
    assert [(e.task_id, e.reason) for e in second] == [
        ("d", "its dependency b cancelled; it can never run")
    ]
    assert step(_stamp([*events, *first, *second])) == []  # nothing left waiting on a lost task
