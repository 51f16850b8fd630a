"""One stateless agent process: wake on the log, claim a task for its role, call the model, append.

The process holds nothing the log cannot rebuild. Kill it at any moment: its lease runs out, the
scheduler records ``task_timed_out`` and another process (or this one, restarted) claims the task
again. A result carries the idempotency key ``done:<run>:<task>``, so a task is completed once.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from swarmlog.errors import SwarmlogError
from swarmlog.escalation import levels
from swarmlog.events import (
    AgentRegistered,
    AgentStatusChanged,
    CheckpointWritten,
    ConfigLoaded,
    Event,
    EventBase,
    Heartbeat,
    MessageSent,
    ModelCallFinished,
    PositionTaken,
    TaskBatched,
    TaskClaimed,
    TaskCompleted,
    TaskFailed,
    TaskStarted,
    TaskTimedOut,
)
from swarmlog.log import EventLog, FileLog
from swarmlog.routing.batching import BatchPlan, plan_batches
from swarmlog.routing.complexity import TaskFeatures, estimate_tokens
from swarmlog.routing.profile import router_config
from swarmlog.runtime.board import (
    EMPTY_BOARD,
    FINISHED,
    SUBMITTED,
    Board,
    TaskView,
    apply_board,
    claimable,
)
from swarmlog.runtime.context import EMPTY_CONTEXT, RunContext, apply_context
from swarmlog.runtime.doorbell import Doorbell, agent_bell
from swarmlog.runtime.flow import is_emergency_task, team_may_work
from swarmlog.runtime.prompts import render_batch_prompt, render_prompt
from swarmlog.runtime.replies import parse_reply
from swarmlog.runtime.tools import ToolError, run_tests, write_files
from swarmlog.team.messaging import judge
from swarmlog.team.settings import DEFAULT_SETTINGS, TeamSettings, team_settings

__all__ = [
    "AgentProcess",
    "CallOutcome",
    "ModelCaller",
    "cut_short_error",
    "exec_caller",
    "record_cut_call",
]


@dataclass
class CallOutcome:
    """What one model call (all its retries included) produced."""

    text: str
    events: list[EventBase] = field(default_factory=list)  # one ModelCallFinished per attempt
    error: str = ""


# (profile name, profile config, task, prompt, json mode) -> outcome
ModelCaller = Callable[[str, dict[str, Any], TaskView, str], Awaitable[CallOutcome]]

# The records of the model call the agent's time limit for a task cancelled (see ``_work``).
_cut_calls: ContextVar[list[EventBase] | None] = ContextVar("cut_calls", default=None)


def record_cut_call(events: Sequence[EventBase]) -> None:
    """Hand the agent the records of a model call that is being cancelled: a ``ModelCaller``
    calls this, before it lets the ``CancelledError`` go on, with one ``model_call_finished`` per
    attempt made, the one cut short included (outcome ``timeout``).

    A cancelled call returns no ``CallOutcome``; when it was the agent's time limit for the task
    that cut it, the agent appends these records with the task's ``task_timed_out``, so the
    breaker and the latency statistics see the hung server. Any other cancellation (the process
    stopping) drops them, as it drops the task.
    """
    sink = _cut_calls.get()
    if sink is not None:
        sink.extend(events)


class AgentProcess:
    """The loop of one agent: fold, claim, work, append, sleep on the doorbell."""

    def __init__(
        self,
        log: EventLog,
        *,
        agent: str,
        role: str,
        call_model: ModelCaller,
        clock: Callable[[], float] = time.time,
        lease_s: float = 30.0,
        heartbeat_s: float = 5.0,
        max_invalid: int = 2,
        idle_wait_s: float = 0.5,
        workspace: Path | None = None,
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self.log = log
        self.agent = agent
        self.role = role
        self.call_model = call_model
        self.clock = clock
        self.lease_s = lease_s
        self.heartbeat_s = heartbeat_s
        self.max_invalid = max_invalid
        self.idle_wait_s = idle_wait_s
        self._on_idle = on_idle  # called once, the first time there is nothing to do (warm-up)
        if workspace is None:  # <workspace>/memory/events, else the current folder
            workspace = log.directory.parent.parent if isinstance(log, FileLog) else Path.cwd()
        self.workspace = workspace
        self.board: Board = EMPTY_BOARD
        self.ctx: RunContext = EMPTY_CONTEXT
        self.esc: levels.EscalationState = levels.EMPTY
        self.team: TeamSettings = DEFAULT_SETTINGS
        self._reader = log.reader(0)
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    # Folding

    def catch_up(self) -> None:
        while batch := self._reader.poll():
            for event in batch:
                self.board = apply_board(self.board, event)
                self.ctx = apply_context(self.ctx, event)
                self.esc = levels.apply(self.esc, event)
                if isinstance(event, ConfigLoaded):
                    self.team = team_settings(event.config.get("team") or {})

    def append(self, events: Sequence[EventBase], *, durable: bool = True) -> list[Event]:
        """Append with the log's durability, or without a sync of its own (``durable=False``).

        The file log is durable by prefix: the next synced append (this agent's result, or any
        other writer's) covers every earlier record. So claims, starts, heartbeats and call
        records skip their own fdatasync: a power cut before the result could only lose what
        the retry after it redoes anyway (the lease runs out, the task is claimed again).
        """
        stamped = [_with_envelope(e, run=self.ctx.run, actor=self.agent) for e in events]
        if not durable and isinstance(self.log, FileLog):
            return self.log.append(stamped, sync="none")
        return self.log.append(stamped)

    # The loop

    async def run(self) -> None:
        """Work until the run ends, the human aborts, or ``stop()`` is called."""
        self.catch_up()
        # The scheduler rings this process's private bell when it has a task to claim (or the run
        # ends), so it is not woken by every append; the timeout below is the safety net. The
        # bell listens before the registration that tells the scheduler where it is.
        bell_at = agent_bell(self.log, self.agent, os.getpid())
        async with Doorbell(self.log, address=bell_at) as bell:
            self.append(
                [
                    AgentRegistered(
                        agent=self.agent,
                        role=self.role,
                        pid=os.getpid(),
                        host=socket.gethostname(),
                    )
                ]
            )
            while not self._stop.is_set():
                self.catch_up()
                directive = levels.team_directive(self.esc)
                if self.ctx.ended or directive == "aborting":
                    break
                task, batch, held_until = self._next_work(
                    emergency_only=not team_may_work(self.esc)
                )
                if task is not None:
                    if batch is not None:
                        held = self._claim_batch(batch)
                        if held:
                            await self._work_batch(batch.batch_id, held)
                            continue
                    elif self._claim(task):
                        await self._work(self.board.tasks[task.task_id])
                        continue
                if self._on_idle is not None:
                    on_idle, self._on_idle = self._on_idle, None
                    on_idle()
                    continue  # look again: work may have come in meanwhile
                # A task held back for company goes (alone or not) once its wait is over.
                await bell.wait(min(self.idle_wait_s, max(held_until - self.clock(), 0.001)))
        self.append([AgentStatusChanged(agent=self.agent, status="stopped")])

    # Batches: small same-kind fast-tier tasks share one call (seed 000, cost-aware batching)

    def _next_work(
        self, *, emergency_only: bool
    ) -> tuple[TaskView | None, TaskBatched | None, float]:
        """Return the first claimable task that may start now, the batch it goes in (if any),
        and the event time at which a task held back for company stops waiting (inf: none).

        ``[limits.batching]``: same-kind tasks for one fast-tier model go together, up to
        ``max_size`` and ``max_tokens``. With ``max_wait_s`` > 0 a group that is not full waits
        that long after its oldest member was routed, but only while more tasks of its kind are
        on their way (submitted, not yet routed); 0, the default, sends what is ready at once:
        the backlog itself is the company.
        """
        now = self.clock()
        tasks = claimable(self.board, self.role, now)
        if emergency_only:
            tasks = [t for t in tasks if is_emergency_task(t.task_id)]
        limits = router_config(self.ctx.config).batching
        no_wait = msgspec.structs.replace(limits, max_wait_s=0.0)
        # Kinds with tasks still on their way (submitted, not yet routed): company may come.
        # Only a wait needs them, so the board is scanned only when max_wait_s is set.
        coming = (
            {t.task_kind for t in self.board.tasks.values() if t.status == SUBMITTED}
            if limits.max_wait_s > 0
            else set()
        )
        held_until = math.inf
        plans: dict[tuple[str, str], BatchPlan] = {}
        for task in tasks:
            if limits.max_size < 2 or task.batch_id:
                return task, None, held_until
            key = (task.model, task.task_kind)
            plan = plans.get(key)
            if plan is None:
                group = [
                    (_features(t), t.routed_ts)
                    for t in tasks
                    if (t.model, t.task_kind) == key and not t.batch_id
                ]
                wait = limits if task.task_kind in coming else no_wait
                plan = plans[key] = plan_batches(group, model=task.model, limits=wait, now=now)
            if task.task_id in plan.waiting:
                held_until = min(held_until, task.routed_ts + limits.max_wait_s)
                continue
            batch = next((b for b in plan.batches if task.task_id in b.task_ids), None)
            return task, batch, held_until
        return None, None, held_until

    def _claim_batch(self, batch: TaskBatched) -> list[TaskView]:
        """Claim every member at once; return the members this agent holds."""
        now = self.clock()
        members = [self.board.tasks[i] for i in batch.task_ids]
        self.append(
            [
                batch,
                *(
                    TaskClaimed(
                        task_id=t.task_id,
                        agent=self.agent,
                        lease_until=now + self.lease_s,
                        attempt=t.attempt + 1,
                    )
                    for t in members
                ),
            ],
            durable=False,
        )
        self.catch_up()
        held = [self.board.tasks[t.task_id] for t in members]
        return [
            t
            for t, before in zip(held, members, strict=True)
            if t.agent == self.agent and t.attempt == before.attempt + 1
        ]

    async def _work_batch(self, batch_id: str, tasks: list[TaskView]) -> None:
        """One call for the batch; split the reply; any task it does not cover goes alone."""
        model = tasks[0].model
        profile = dict(self.ctx.config.get("models", {}).get(model, {}))
        self.append(
            [
                *(
                    TaskStarted(task_id=t.task_id, agent=self.agent, attempt=t.attempt, model=model)
                    for t in tasks
                ),
                AgentStatusChanged(agent=self.agent, status="working", task_id=tasks[0].task_id),
            ],
            durable=False,
        )
        beats = [asyncio.create_task(self._heartbeats(t)) for t in tasks]
        try:
            prompt = render_batch_prompt(
                role=self.role,
                batch_id=batch_id,
                tasks=tasks,
                ctx=self.ctx,
                attempt=max(t.attempt for t in tasks),
                budget_tokens=self.team.context.budget_for(self.role),
            )
            lead = msgspec.structs.replace(tasks[0], task_id=batch_id, task_kind="batch")
            outcome = await self.call_model(model, profile, lead, prompt)
            results = self._split(batch_id, tasks, outcome)
            events: list[EventBase] = []
            for task in tasks:
                if task.task_id in results:
                    data, calls = results[task.task_id]
                    events += self._results(task, data, calls)
                else:  # the batch reply left it out or was malformed: a call of its own
                    events += await self._attempt(task, model, profile)
        finally:
            for beat in beats:
                beat.cancel()
        self.catch_up()
        mine = {t.task_id for t in tasks if self._holds(t)}
        kept = [
            e
            for e in events
            if isinstance(e, ModelCallFinished)  # calls made stay on record, stale or not
            or getattr(e, "task_id", "") in mine
            or not hasattr(e, "task_id")
        ]
        self.append([*kept, AgentStatusChanged(agent=self.agent, status="idle")])

    def _split(
        self, batch_id: str, tasks: list[TaskView], outcome: CallOutcome
    ) -> dict[str, tuple[dict[str, Any], list[EventBase]]]:
        """Validate a batch reply and share its call's tokens and cost among the tasks it covers."""
        events = [
            msgspec.structs.replace(e, batch_id=batch_id) if isinstance(e, ModelCallFinished) else e
            for e in outcome.events
        ]
        data, error = (None, outcome.error) if outcome.error else parse_reply("batch", outcome.text)
        if (
            data is None
            and events
            and isinstance(events[-1], ModelCallFinished)
            and not outcome.error
        ):
            events[-1] = msgspec.structs.replace(
                events[-1], outcome="invalid", error=error, reply=outcome.text[:4000]
            )
        self.append(events, durable=False)
        if data is None:
            return {}
        ids = {t.task_id for t in tasks}
        covered = {r["task_id"]: r for r in data["results"] if r["task_id"] in ids}
        share = [_share(e, len(covered)) for e in events if isinstance(e, ModelCallFinished)]
        return {tid: (dict(r), list(share)) for tid, r in covered.items()}

    def _claim(self, task: TaskView) -> bool:
        """Append a claim; the log's order decides between rivals (first live claim wins)."""
        now = self.clock()
        self.append(
            [
                TaskClaimed(
                    task_id=task.task_id,
                    agent=self.agent,
                    lease_until=now + self.lease_s,
                    attempt=task.attempt + 1,
                )
            ],
            durable=False,
        )
        self.catch_up()
        held = self.board.tasks[task.task_id]
        return held.agent == self.agent and held.attempt == task.attempt + 1

    async def _work(self, task: TaskView) -> None:
        profile_name = task.model
        profile = dict(self.ctx.config.get("models", {}).get(profile_name, {}))
        self.append(
            [
                TaskStarted(
                    task_id=task.task_id, agent=self.agent, attempt=task.attempt, model=profile_name
                ),
                AgentStatusChanged(agent=self.agent, status="working", task_id=task.task_id),
            ],
            durable=False,
        )
        beat = asyncio.create_task(self._heartbeats(task))
        limit = float(self.ctx.config.get("agents", {}).get(self.role, {}).get("timeout_s") or 0)
        # The role's limit (the Director's 120 s) is often shorter than the model's own timeout_s
        # (600 s): a call it cancels hands its records over (record_cut_call) to be kept.
        cut: list[EventBase] = []
        token = _cut_calls.set(cut)
        try:
            async with asyncio.timeout(limit or None):  # the seed's agent table: every wait ends
                events = await self._attempt(task, profile_name, profile)
        except TimeoutError:
            events = [
                *cut,
                TaskTimedOut(task_id=task.task_id, agent=self.agent, attempt=task.attempt),
            ]
        except SwarmlogError as exc:
            events = [
                TaskFailed(
                    task_id=task.task_id, agent=self.agent, attempt=task.attempt, error=str(exc)
                )
            ]
        finally:
            _cut_calls.reset(token)
            beat.cancel()
        self.catch_up()
        if not self._holds(task):
            # The lease ran out and the task moved on: our result would be stale, but the calls
            # it cost were made and stay on record.
            calls = [e for e in events if isinstance(e, ModelCallFinished)]
            if calls:
                self.append(calls, durable=False)
            return
        self.append([*events, AgentStatusChanged(agent=self.agent, status="idle")])

    def _holds(self, task: TaskView) -> bool:
        """Whether this attempt still holds ``task`` on the board as folded so far: its claim
        was not timed out, taken over by another claim, or overtaken by another result."""
        current = self.board.tasks.get(task.task_id)
        return (
            current is not None
            and current.agent == self.agent
            and current.attempt == task.attempt
            and current.status not in FINISHED
        )

    async def _heartbeats(self, task: TaskView) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            self.append(
                [
                    Heartbeat(
                        agent=self.agent,
                        task_id=task.task_id,
                        lease_until=self.clock() + self.lease_s,
                    )
                ],
                durable=False,
            )

    async def _attempt(
        self, task: TaskView, profile_name: str, profile: dict[str, Any]
    ) -> list[EventBase]:
        """Call the model until its reply validates (or the invalid-reply limit is reached).

        The records of the last call come back at the head of the events, to be appended with the
        result in one append (one wake-up of every reader instead of two); a call whose reply is
        retried is appended at once, so the log shows it before the retry.
        """
        # A retry tells the model why the last attempt failed (a refused tool, a bad reply, ...).
        previous_error = task.error if task.attempt > 1 else ""
        text = ""
        calls: list[EventBase] = []
        for _ in range(self.max_invalid + 1):
            prompt = render_prompt(
                role=self.role,
                task=task,
                ctx=self.ctx,
                board=self.board,
                attempt=task.attempt,
                previous_error=previous_error,
                budget_tokens=self.team.context.budget_for(self.role),
            )
            outcome = await self.call_model(profile_name, profile, task, prompt)
            if outcome.error:
                return [
                    *outcome.events,
                    TaskFailed(
                        task_id=task.task_id,
                        agent=self.agent,
                        attempt=task.attempt,
                        error=outcome.error,
                    ),
                ]
            text = outcome.text
            data, previous_error = parse_reply(task.task_kind, text)
            events = list(outcome.events)
            if data is None and events and isinstance(events[-1], ModelCallFinished):
                # The call worked but its reply did not validate: record it as such.
                events[-1] = msgspec.structs.replace(
                    events[-1], outcome="invalid", error=previous_error, reply=text[:4000]
                )
            calls += events
            if data is not None:
                return [*events, *self._results(task, data, calls)]
            self.append(events, durable=False)
        return [
            TaskFailed(
                task_id=task.task_id,
                agent=self.agent,
                attempt=task.attempt,
                error=f"invalid reply: {previous_error}",
                reply=text[:4000],
            )
        ]

    def _results(
        self, task: TaskView, data: dict[str, Any], calls: Sequence[EventBase] = ()
    ) -> list[EventBase]:
        """Turn a validated reply into the events that record it (an emergency it raises first,
        whether the task succeeded or failed).

        A reply that comes in after this attempt lost the task (its lease ran out while the
        process was frozen or slow, and the task was timed out or done by another agent) records
        nothing, an emergency included, and touches nothing: its files would overwrite those of
        the result the log records, and its tests would run on them.
        """
        self.catch_up()
        if not self._holds(task):
            return []
        out = self._outcome(task, data, calls)
        what = str(data.get("emergency") or "").strip()
        return [self._emergency(task, what), *out] if what else out

    def _outcome(
        self, task: TaskView, data: dict[str, Any], calls: Sequence[EventBase]
    ) -> list[EventBase]:
        out: list[EventBase] = []
        kind = task.task_kind
        summary = str(data.get("summary") or data.get("report") or data.get("rationale") or "")
        if kind in ("critique", "decide"):
            out.append(
                PositionTaken(
                    review_id=task.parent,
                    agent=self.agent,
                    round=task.round,
                    stance=data["stance"],
                    confidence=data["confidence"],
                    critical_bugs=data["critical_bugs"],
                    rationale=data["rationale"],
                    fundamental_flaw=data.get("fundamental_flaw", False),
                )
            )
        elif kind == "checkpoint_summary":
            out.append(self._checkpoint(task, data))
        elif data.get("status") == "failed":
            return [
                TaskFailed(
                    task_id=task.task_id,
                    agent=self.agent,
                    attempt=task.attempt,
                    error=f"agent reported failure: {summary}",
                )
            ]
        # The work folder is relative to the workspace, whatever the process's cwd.
        work_dir = self.workspace / str(self.ctx.config.get("run", {}).get("work_dir", "work"))
        policy = self.ctx.config.get("agents", {}).get(self.role)  # tools_allow / tools_deny
        try:
            if data.get("files"):
                written = write_files(work_dir, data["files"], policy=policy, role=self.role)
                data = {**data, "files": sorted(written)}
            if data.get("run_tests"):
                run_cfg = self.ctx.config.get("run", {})
                tests = run_tests(run_cfg, work_dir, policy=policy, role=self.role)
                data = {**data, "tests": tests}
        except ToolError as exc:
            return [
                TaskFailed(
                    task_id=task.task_id,
                    agent=self.agent,
                    attempt=task.attempt,
                    error=str(exc),
                    retryable=True,
                )
            ]
        if kind in ("implement", "research", "refactor", "fix") and summary:
            # The seed's status report to the Director, judged by the team's topology rules.
            message = MessageSent(
                msg_id=f"m-{task.task_id}-{task.attempt}",
                sender=self.agent,
                to="director",
                type="STATUS",
                content=f"Completed {task.title}. {summary}",
                expected_response="Review when the phase's work is done.",
            )
            out.append(judge(message, self.agent, self.ctx.phase, self.team))
        out.append(
            TaskCompleted(
                task_id=task.task_id,
                agent=self.agent,
                attempt=task.attempt,
                summary=summary[:2000],
                output=data,
                tokens_in=sum(getattr(c, "prompt_tokens", 0) for c in calls),
                tokens_out=sum(getattr(c, "completion_tokens", 0) for c in calls),
                cost=round(sum(getattr(c, "cost", 0.0) for c in calls), 6),
                key=f"done:{self.ctx.run}:{task.task_id}",
            )
        )
        return out

    def _emergency(self, task: TaskView, what: str) -> EventBase:
        """The seed's emergency alert to the Director: it calls an emergency meeting."""
        message = MessageSent(
            msg_id=f"e-{task.task_id}-{task.attempt}",
            sender=self.agent,
            to="director",
            type="ALERT",
            priority="EMERGENCY",
            content=what,
            context=f"Raised while working on task {task.task_id} ({task.title}).",
            expected_response="Decide now: fix and continue, roll back and redesign, or "
            "escalate to a human.",
        )
        return judge(message, self.agent, self.ctx.phase, self.team)

    def _checkpoint(self, task: TaskView, data: dict[str, Any]) -> CheckpointWritten:
        reports = {
            t.agent or t.role: str(t.output.get("report", ""))
            for t in self.board.tasks.values()
            if t.parent == task.parent and t.task_kind == "checkpoint_report" and t.output
        }
        decision = next(
            (
                str(t.output.get("decision", "continue"))
                for t in self.board.tasks.values()
                if t.parent == task.parent and t.task_kind == "checkpoint_decide" and t.output
            ),
            "continue",
        )
        return CheckpointWritten(
            checkpoint_id=task.parent,
            trigger=task.prompt.splitlines()[0] if task.prompt else "milestone",
            summary=str(data["summary"]),
            phase=self.ctx.phase,
            reports=dict(sorted(reports.items())),
            decision=decision,
            next_trigger=str(data.get("next_trigger", "")),
        )


def _features(task: TaskView) -> TaskFeatures:
    return TaskFeatures(
        task_id=task.task_id,
        task_kind=task.task_kind,
        prompt_tokens=estimate_tokens(task.prompt),
        files=len(task.files),
    )


def _share(call: ModelCallFinished, parts: int) -> ModelCallFinished:
    """One task's share of a batch call, for its ``task_completed`` totals (not re-appended)."""
    n = max(parts, 1)
    return msgspec.structs.replace(
        call,
        prompt_tokens=call.prompt_tokens // n,
        completion_tokens=call.completion_tokens // n,
        cost=call.cost / n,
    )


def _with_envelope(event: EventBase, *, run: str, actor: str) -> EventBase:
    return msgspec.structs.replace(event, run=event.run or run, actor=event.actor or actor)


def exec_caller(command: str, timeout_s: float) -> ModelCaller:
    """Serve a role with an external command: the prompt on stdin, the reply on stdout."""

    async def call(name: str, profile: dict[str, Any], task: TaskView, prompt: str) -> CallOutcome:
        env = {
            **os.environ,
            "SWARMLOG_TASK_ID": task.task_id,
            "SWARMLOG_TASK_KIND": task.task_kind,
            "SWARMLOG_TASK_TITLE": task.title,
            "SWARMLOG_ROLE": task.role,
        }
        start = time.monotonic()
        try:
            proc = await asyncio.to_thread(
                subprocess.run,
                command,
                shell=True,
                input=prompt,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return CallOutcome(
                text="", error=f"exec agent {command!r} timed out after {timeout_s}s"
            )
        except asyncio.CancelledError:
            ms = (time.monotonic() - start) * 1000
            record_cut_call([_cut_record(f"exec:{task.role}", task.task_id, ms)])
            raise
        ms = (time.monotonic() - start) * 1000
        ok = proc.returncode == 0
        record = ModelCallFinished(
            model=f"exec:{task.role}",
            task_id=task.task_id,
            total_ms=ms,
            ttft_ms=ms,
            outcome="ok" if ok else "error",
            error="" if ok else f"exit {proc.returncode}: {proc.stderr.strip()[:200]}",
        )
        error = "" if ok else f"exec agent {command!r} exited {proc.returncode}"
        return CallOutcome(text=proc.stdout, events=[record], error=error)

    return call


def cut_short_error(ms: float) -> str:
    """The ``error`` of a call cancelled after ``ms`` milliseconds without a reply."""
    return f"no reply after {ms / 1000:.1f}s: cut short by the agent's time limit for the task"


def _cut_record(model: str, task_id: str, ms: float) -> ModelCallFinished:
    """The record of a call cancelled after ``ms`` milliseconds without a reply."""
    return ModelCallFinished(
        model=model, task_id=task_id, total_ms=ms, outcome="timeout", error=cut_short_error(ms)
    )
