"""[limits.batching] max_wait_s at run time: a group of small same-kind tasks that is not full
waits (up to max_wait_s after its oldest member was routed) while more of its kind are on their
way (submitted, not yet routed), then goes as one call; with nothing of its kind on the way (or
max_wait_s = 0) it goes at once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from test_runtime_team import _config, _scripted

from swarmlog.events import (
    ConfigLoaded,
    Event,
    ModelCallFinished,
    RunStarted,
    TaskBatched,
    TaskClaimed,
    TaskCompleted,
    TaskRouted,
    TaskSubmitted,
)
from swarmlog.log import FileLog
from swarmlog.runtime.agent import AgentProcess
from swarmlog.workspace import Workspace


def _lint(task_id: str, **kw: Any) -> TaskSubmitted:
    return TaskSubmitted(
        task_id=task_id,
        title=f"Lint {task_id}",
        task_kind="lint",
        role="builder",
        files=(f"src/{task_id}.py",),
        lines=120,
        languages=("python",),
        actor="scheduler",
        **kw,
    )


async def _night(
    root: Path, max_wait_s: float, *, company: bool, route_b: bool = True
) -> list[Event]:
    """One builder; lint task a routed at once, lint task b routed 0.15 s later by hand. With
    ``company`` b is submitted from the start (on its way while a is ready), else only then."""
    log = FileLog(Workspace(root).events)
    config = _config("demo")
    config["limits"]["batching"]["max_wait_s"] = max_wait_s
    log.append(
        [
            RunStarted(goal="lint", run="r1", actor="supervisor"),
            ConfigLoaded(config=config, run="r1", actor="supervisor"),
            _lint("a"),
            *([_lint("b")] if company else []),
            TaskRouted(task_id="a", model="fast", actor="scheduler"),
        ]
    )
    agent = AgentProcess(
        log, agent="builder", role="builder", call_model=_scripted("demo", "builder"), lease_s=30
    )
    worker = asyncio.create_task(agent.run())
    await asyncio.sleep(0.15)
    b = [] if company else [_lint("b")]
    if route_b:
        log.append([*b, TaskRouted(task_id="b", model="fast", actor="scheduler")])
    for _ in range(200):
        done = {e.task_id for e in log.read() if isinstance(e, TaskCompleted)}
        if {"a", "b"} <= done or (not route_b and "a" in done):
            break
        await asyncio.sleep(0.05)
    agent.stop()
    await asyncio.wait_for(worker, 10)
    return list(log.read())


def _of(events: list[Event], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


@pytest.mark.anyio
async def test_a_group_waits_for_company_that_is_on_its_way(tmp_path: Path) -> None:
    events = await _night(tmp_path, 0.6, company=True)
    (batch,) = _of(events, TaskBatched)
    assert sorted(batch.task_ids) == ["a", "b"]
    # a did not go alone while b was on its way: its claim came after b's routing.
    routed_b = next(e.seq for e in _of(events, TaskRouted) if e.task_id == "b")
    assert min(e.seq for e in _of(events, TaskClaimed)) > routed_b
    assert [e.task_id for e in _of(events, ModelCallFinished)] == [batch.batch_id]
    assert {e.task_id for e in _of(events, TaskCompleted)} == {"a", "b"}


@pytest.mark.anyio
async def test_without_max_wait_or_company_on_the_way_a_task_goes_at_once(tmp_path: Path) -> None:
    for i, (wait, company) in enumerate([(0.0, True), (0.6, False)]):
        events = await _night(tmp_path / str(i), wait, company=company)
        assert not _of(events, TaskBatched)  # a went alone before b was routed
        claims = [e.task_id for e in _of(events, TaskClaimed)]
        assert claims == ["a", "b"]


@pytest.mark.anyio
async def test_company_that_never_comes_is_waited_for_max_wait_s_only(tmp_path: Path) -> None:
    events = await _night(tmp_path, 0.4, company=True, route_b=False)
    assert not _of(events, TaskBatched)
    routed_a = next(e.ts for e in _of(events, TaskRouted) if e.task_id == "a")
    (claim,) = _of(events, TaskClaimed)
    assert claim.task_id == "a" and claim.ts - routed_a >= 0.4
    assert [e.task_id for e in _of(events, TaskCompleted)] == ["a"]
