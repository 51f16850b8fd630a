"""The team's protocol end to end in one process: scheduler, seven agents and the monitor on a
real file log, with the model calls answered by a scenario's scripted replies (no sockets).

The subprocess tests in test_runtime_processes.py run the same scenarios through real processes
and real simulated servers; these are the fast, deterministic checks of what the team decides.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from swarmlog.config import parse_config
from swarmlog.escalation.levels import EMPTY as ESC_EMPTY
from swarmlog.escalation.levels import apply as esc_apply
from swarmlog.escalation.levels import project as esc_project
from swarmlog.escalation.levels import team_directive
from swarmlog.events import (
    ConfigLoaded,
    DecisionMade,
    EscalationRaised,
    EscalationResolved,
    Event,
    HumanCommand,
    MessageSent,
    ModelCallFinished,
    PhaseEntered,
    RunEnded,
    RunStarted,
    TaskBatched,
    TaskCompleted,
    TaskRouted,
    TaskStarted,
)
from swarmlog.log import FileLog
from swarmlog.replay import load_check_modules, verify
from swarmlog.runtime.agent import AgentProcess, CallOutcome
from swarmlog.runtime.board import TaskView
from swarmlog.runtime.monitor import Monitor
from swarmlog.runtime.scheduler import Scheduler
from swarmlog.runtime.supervisor import ROLES
from swarmlog.sim.scenarios import get_scenario, make_reply_fn
from swarmlog.sim.scenarios.launch import fleet_config
from swarmlog.team.settings import team_settings
from swarmlog.workspace import Workspace


def _config(name: str) -> dict[str, Any]:
    scenario = get_scenario(name)
    urls = {p.server: f"http://127.0.0.1:9/{p.server}" for p in scenario.profiles}
    return parse_config(fleet_config(scenario, urls)).to_event_dict()


def _scripted(name: str, agent: str, prompts: list[tuple[str, str, int]] | None = None) -> Any:
    """A model call answered by the scenario's script; ``prompts`` collects (task, prompt,
    attempt) when given."""
    reply = make_reply_fn(get_scenario(name))

    async def call(model: str, profile: dict[str, Any], task: TaskView, prompt: str) -> CallOutcome:
        if prompts is not None:
            prompts.append((task.task_id, prompt, task.attempt))
        text = reply(profile["model"], [{"role": "user", "content": prompt}], {})
        record = ModelCallFinished(
            model=model,
            task_id=task.task_id,
            agent=agent,
            total_ms=5.0,
            ttft_ms=1.0,
            prompt_tokens=len(prompt) // 4,
            completion_tokens=len(text) // 4,
        )
        return CallOutcome(text=text, events=[record])

    return call


async def _human_resumes(log: FileLog) -> None:
    """Play the human at level 3: whenever the team waits, ack every alert and resume it."""
    reader = log.reader(0)
    state = ESC_EMPTY
    while True:
        for event in reader.poll():
            state = esc_apply(state, event)
        if team_directive(state) == "waiting_for_human":
            log.append([HumanCommand(command="resume", run="r1", actor="human")])
            state = esc_apply(state, HumanCommand(command="resume"))
        await asyncio.sleep(0.05)


async def _run_team(
    root: Path,
    scenario: str,
    *,
    timeout: float = 60.0,
    idle_wait_s: float = 30.0,
    config: dict[str, Any] | None = None,
    prompts: list[tuple[str, str, int]] | None = None,
) -> list[Event]:
    """Run the team in this process. Agents wait ``idle_wait_s`` between looks at the log when
    nothing rings them: long by default, so the team only gets through its night if the
    scheduler rings each agent's private bell whenever it has work (or the run ends)."""
    ws = Workspace(root)
    log = FileLog(ws.events)
    config = config or _config(scenario)
    log.append(
        [
            RunStarted(goal="test the team", scenario=scenario, run="r1", actor="supervisor"),
            ConfigLoaded(config=config, run="r1", actor="supervisor"),
        ]
    )
    scheduler = Scheduler(log, team=team_settings(config["team"]), tick_s=0.05)
    agents = [
        AgentProcess(
            log,
            agent=role,
            role=role,
            call_model=_scripted(scenario, role, prompts),
            lease_s=30.0,
            heartbeat_s=5.0,
            idle_wait_s=idle_wait_s,
        )
        for role in ROLES
    ]
    monitor = Monitor(ws, log, sample=False, interval_s=0.05)
    workers = [asyncio.create_task(a.run()) for a in agents]
    watcher = asyncio.create_task(monitor.run())
    human = asyncio.create_task(_human_resumes(log))
    try:
        await asyncio.wait_for(scheduler.run(), timeout)
        await asyncio.wait_for(asyncio.gather(*workers, watcher), 10.0)
    finally:
        for task in [*workers, watcher, human]:
            task.cancel()
    return list(log.read())


def _of(events: list[Event], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


@pytest.mark.anyio
async def test_demo_goes_through_every_phase_and_is_replayable(tmp_path: Path) -> None:
    events = await _run_team(tmp_path, "demo")
    ended = _of(events, RunEnded)
    assert [e.outcome for e in ended] == ["completed"]
    phases = [(e.phase, e.iteration) for e in _of(events, PhaseEntered)]
    assert phases == [
        ("planning", 0),
        ("execution", 0),
        ("review", 0),
        ("iteration", 1),
        ("review", 1),
    ]
    decisions = _of(events, DecisionMade)
    assert [(d.outcome, d.rule) for d in decisions] == [
        ("request_changes", "supermajority"),
        ("approve", "supermajority"),
    ]
    # Every task completed exactly once, each after exactly one routing decision per attempt.
    done = [e.task_id for e in _of(events, TaskCompleted)]
    assert len(done) == len(set(done))
    routed = {e.task_id for e in _of(events, TaskRouted)}
    assert set(done) <= routed
    # A checkpoint follows each phase; its summary is Scribe's.
    checkpoints = [e for e in events if type(e).__name__ == "CheckpointWritten"]
    assert len(checkpoints) == 4
    assert all(c.actor == "scribe" for c in checkpoints)
    # The invalid first reply of the type-check task was recorded and retried, not fatal.
    invalid = [e for e in _of(events, ModelCallFinished) if e.outcome == "invalid"]
    assert [e.task_id for e in invalid] == ["w-typecheck"]
    # The three lint tasks, ready together for the fast model, shared one call.
    lint = [b for b in _of(events, TaskBatched) if b.task_ids[0].startswith("w-lint")]
    assert [sorted(b.task_ids) for b in lint] == [["w-lint-api", "w-lint-auth", "w-lint-tests"]]
    batch_calls = [e for e in _of(events, ModelCallFinished) if e.task_id == lint[0].batch_id]
    assert len(batch_calls) == 1 and lint[0].model == "fast"
    # Tasks made ready together (a checkpoint's reports) are routed in one append, and every
    # decision in it still re-derives from the state just before it (verify, below).
    routed_at: dict[float, int] = {}
    for r in _of(events, TaskRouted):
        routed_at[r.ts] = routed_at.get(r.ts, 0) + 1
    assert max(routed_at.values()) >= 3
    # A task's validated call is stored with its result, in the same append (one wake-up).
    ok_calls = {e.task_id: e for e in _of(events, ModelCallFinished) if e.outcome == "ok"}
    for done_event in _of(events, TaskCompleted):
        call = ok_calls.get(done_event.task_id)
        if call is not None:
            assert call.seq < done_event.seq and call.ts == done_event.ts
    load_check_modules()
    assert verify(FileLog(tmp_path / "memory" / "events").read()) == []


@pytest.mark.anyio
async def test_conflict_ends_with_the_director_deciding_at_max_rounds(tmp_path: Path) -> None:
    events = await _run_team(tmp_path, "conflict")
    decisions = _of(events, DecisionMade)
    assert len(decisions) == 1
    decision = decisions[0]
    assert decision.rule == "max_rounds"
    assert decision.by == "director"
    assert decision.outcome == "request_changes"
    assert "no convergence after 3 rounds" in decision.controversy
    # No consensus goes to the human (seed guide §3): level 3, and the team waited for the
    # human's resume before it went on to the end of the run.
    raised = [e for e in _of(events, EscalationRaised) if e.rule == "no_consensus"]
    assert [e.level for e in raised] == [3]
    resumed = _of(events, HumanCommand)[0].seq
    assert raised[0].seq < resumed < _of(events, RunEnded)[0].seq
    assert [e.outcome for e in _of(events, RunEnded)] == ["completed_with_open_issues"]


@pytest.mark.anyio
async def test_an_emergency_message_pauses_the_team_and_the_director_mediates(
    tmp_path: Path,
) -> None:
    events = await _run_team(tmp_path, "emergency")
    (alert,) = [e for e in _of(events, MessageSent) if e.priority == "EMERGENCY"]
    assert (alert.sender, alert.to, alert.type) == ("inspector", "director", "ALERT")
    assert "MD5" in alert.content
    (raised,) = [e for e in _of(events, EscalationRaised) if e.rule == "emergency_message"]
    assert raised.level == 2 and raised.seq > alert.seq
    # The meeting: the Director mediates and resolves it; no regular work starts meanwhile.
    (resolved,) = [
        e for e in _of(events, EscalationResolved) if e.escalation_id == raised.escalation_id
    ]
    assert resolved.by == "director"
    mediated = {e.task_id for e in _of(events, TaskCompleted) if e.task_id.startswith("mediate-")}
    assert mediated
    started = [
        e
        for e in _of(events, TaskStarted)
        if raised.seq < e.seq < resolved.seq and not e.task_id.startswith(("mediate-", "dump-"))
    ]
    assert started == []
    assert [e.outcome for e in _of(events, RunEnded)] == ["completed"]


@pytest.mark.anyio
async def test_stuck_agent_escalates_one_to_two_after_two_failed_recoveries(
    tmp_path: Path,
) -> None:
    events = await _run_team(tmp_path, "stuck")
    same_error = [e for e in _of(events, EscalationRaised) if e.rule == "same_error"]
    assert [e.level for e in same_error] == [1, 2]
    assert "recurred after 2 failed recovery attempts" in same_error[1].reason
    # Level 2 is an emergency meeting the Director mediates, which resolves it.
    resolved = [e for e in _of(events, EscalationResolved) if e.by == "director"]
    assert same_error[1].escalation_id in {e.escalation_id for e in resolved}
    state = esc_project(events, ESC_EMPTY)
    assert state.level < 2
