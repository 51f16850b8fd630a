"""A model call cut short by the agent's own time limit for its task is still on record.

``[agents.<role>] timeout_s`` (the Director's 120 s) is shorter than a model's ``timeout_s``
(600 s by default), so against a server that accepts and never answers the agent's limit fires
first and cancels the call. The call's ``model_call_finished`` (outcome ``timeout``) was lost with
it: the breaker never saw the hung server and the statistics never saw the hang. Each test runs a
real agent against a loopback server that never answers, on a real log in ``tmp_path``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from swarmlog.events import (
    CircuitOpened,
    ConfigLoaded,
    Event,
    ModelCallFinished,
    RunStarted,
    TaskRouted,
    TaskSubmitted,
    TaskTimedOut,
)
from swarmlog.log import FileLog
from swarmlog.routing import breaker, stats
from swarmlog.runtime.agent import AgentProcess, exec_caller
from swarmlog.runtime.calls import ModelCalls
from swarmlog.sim.http import HttpServer, Request, Response

pytestmark = pytest.mark.anyio

LIMIT_S = 0.4  # the role's time limit: far below the model's own timeout_s


@asynccontextmanager
async def silent_server() -> AsyncIterator[tuple[str, list[float]]]:
    """A server that accepts every request and never answers; yields its URL and the times the
    requests came in."""
    came: list[float] = []

    async def hang(req: Request, resp: Response) -> None:
        came.append(time.monotonic())
        await asyncio.Event().wait()

    server = HttpServer(hang)
    await server.start()
    try:
        yield server.url, came
    finally:
        await server.stop()


def night(log: FileLog, url: str, tasks: list[str]) -> None:
    config = {
        "models": {
            "fast": {"endpoint": url, "model": "qwen3:32b", "api": "ollama", "timeout_s": 600},
        },
        "agents": {"director": {"timeout_s": LIMIT_S}},
    }
    log.append(
        [
            RunStarted(goal="g", run="r", actor="t"),
            ConfigLoaded(config=config, run="r", actor="t"),
            *(
                ev
                for t in tasks
                for ev in (
                    TaskSubmitted(task_id=t, title=t, role="director", run="r", actor="t"),
                    TaskRouted(task_id=t, model="fast", run="r", actor="t"),
                )
            ),
        ]
    )


async def work(log: FileLog, tasks: list[str]) -> None:
    calls = ModelCalls("director-1", seed=1)
    agent = AgentProcess(log, agent="director-1", role="director", call_model=calls)
    try:
        agent.catch_up()
        for t in tasks:
            assert agent._claim(agent.board.tasks[t])
            started = time.monotonic()
            await agent._work(agent.board.tasks[t])
            assert time.monotonic() - started < LIMIT_S + 2.0  # the role's limit held
    finally:
        await calls.aclose()


async def test_a_call_cut_by_the_roles_time_limit_is_recorded_with_the_time_out(
    tmp_path: Path,
) -> None:
    log = FileLog(tmp_path / "events")
    try:
        async with silent_server() as (url, came):
            night(log, url, ["plan"])
            await work(log, ["plan"])
            assert len(came) == 1  # the one request the model server got
        events: list[Event] = list(log.read())
    finally:
        log.close()
    calls = [e for e in events if isinstance(e, ModelCallFinished)]
    assert len(calls) == 1
    (call,) = calls
    assert call.outcome == "timeout"
    assert call.model == "fast" and call.endpoint == url and call.task_id == "plan"
    assert call.agent == "director-1" and call.actor == "director-1" and call.run == "r"
    assert 0 < call.total_ms <= LIMIT_S * 1000 * 1.5  # the time the attempt was in flight
    assert "time limit" in call.error and "\n" not in call.error
    timed_out = [e for e in events if isinstance(e, TaskTimedOut)]
    assert [(e.task_id, e.attempt) for e in timed_out] == [("plan", 1)]
    assert timed_out[0].seq == call.seq + 1 and timed_out[0].ts == call.ts  # one append
    # The router's fold counts it: a call made, a failure, a failed entry in the breaker window.
    state = stats.project(events)
    assert state.stats["fast"].calls == 1 and state.stats["fast"].failures == 1
    assert state.circuits["fast"].window == ((call.ts, True),)


async def test_five_calls_cut_by_the_time_limit_open_the_models_circuit(tmp_path: Path) -> None:
    tasks = [f"t{n}" for n in range(breaker.MIN_CALLS)]
    log = FileLog(tmp_path / "events")
    try:
        async with silent_server() as (url, came):
            night(log, url, tasks)
            await work(log, tasks)
            assert len(came) == len(tasks)
        events: list[Event] = list(log.read())
    finally:
        log.close()
    calls = [e for e in events if isinstance(e, ModelCallFinished)]
    assert [(c.task_id, c.outcome) for c in calls] == [(t, "timeout") for t in tasks]
    state = stats.project(events)
    verdict = breaker.decide(state.circuits["fast"], calls[-1], model="fast")
    assert isinstance(verdict, CircuitOpened)
    assert verdict.failures == len(tasks)


async def test_an_exec_agent_cut_by_the_time_limit_is_recorded_too(tmp_path: Path) -> None:
    log = FileLog(tmp_path / "events")
    try:
        night(log, "http://127.0.0.1:9", ["plan"])
        agent = AgentProcess(
            log, agent="director-1", role="director", call_model=exec_caller("sleep 1.5", 30.0)
        )
        agent.catch_up()
        assert agent._claim(agent.board.tasks["plan"])
        await agent._work(agent.board.tasks["plan"])
        events: list[Event] = list(log.read())
    finally:
        log.close()
    calls = [e for e in events if isinstance(e, ModelCallFinished)]
    assert [(c.model, c.task_id, c.outcome) for c in calls] == [
        ("exec:director", "plan", "timeout")
    ]
    assert 0 < calls[0].total_ms <= LIMIT_S * 1000 * 1.5
    assert isinstance(events[-2], TaskTimedOut) and events[-2].seq == calls[0].seq + 1
