"""[agents.ROLE] tools_allow / tools_deny in a real team run: a refused tool fails the attempt with
the reason, and the retry's prompt tells the model why."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_runtime_team import _config, _run_team

from swarmlog.events import (
    EscalationRaised,
    RunEnded,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
)
from swarmlog.log import FileLog
from swarmlog.workspace import Workspace


@pytest.mark.anyio
async def test_a_denied_tool_fails_the_attempt_and_the_retry_is_told_why(tmp_path: Path) -> None:
    config = _config("demo")
    config["agents"]["builder"]["tools_deny"] = ["file_write"]
    prompts: list[tuple[str, str, int]] = []
    # With the builder's every write refused its work items fail for good once the attempts run
    # out; the items waiting on them are cancelled (they can never run) and the night goes on to
    # its review instead of waiting forever.
    await _run_team(tmp_path, "demo", config=config, prompts=prompts, timeout=30.0)
    events = list(FileLog(Workspace(tmp_path).events).read())
    assert [e for e in events if isinstance(e, RunEnded)]
    failed = {e.task_id for e in events if isinstance(e, TaskFailed)}
    cancelled = [e for e in events if isinstance(e, TaskCancelled)]
    lost = failed | {e.task_id for e in cancelled}
    assert cancelled
    for e in cancelled:
        assert e.reason.startswith("its dependency ") and e.reason.split()[2] in lost, e

    refused = [e for e in events if isinstance(e, TaskFailed) and e.agent == "builder"]
    assert refused, "the builder's file writes must be refused"
    assert all("[agents.builder]" in e.error and "tools_deny" in e.error for e in refused)
    # No builder task that wanted to write files completed.
    builder_done = {e.task_id for e in events if isinstance(e, TaskCompleted)} & {
        e.task_id for e in refused
    }
    assert not builder_done
    # Each retry's prompt carries the previous attempt's refusal.
    retried = [
        (t, p) for t, p, attempt in prompts if attempt > 1 and t in {e.task_id for e in refused}
    ]
    assert retried and all("tools_deny" in p for _t, p in retried)
    assert any(isinstance(e, EscalationRaised) and "tools_deny" in e.reason for e in events), (
        "the repeated refusal must reach the escalation ladder"
    )


@pytest.mark.anyio
async def test_the_default_tool_tables_let_the_demo_team_finish(tmp_path: Path) -> None:
    events = await _run_team(tmp_path, "demo", timeout=30.0)
    assert not [e for e in events if isinstance(e, TaskFailed) and "tools_" in e.error]
    assert [e.outcome for e in events if isinstance(e, RunEnded)] == ["completed"]
