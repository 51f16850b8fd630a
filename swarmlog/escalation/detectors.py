"""Detection rules (seed §4): a pure fold over the log that says when something is wrong.

``observe(state, event, settings)`` returns the next state and the ``DetectorFired`` events the
event caused. Each condition fires once per episode and re-arms when it clears; the count-based
rules (stuck calls, repeated errors) restart their count after firing, so a problem that persists
through a recovery fires again — that recurrence is what escalates it (see ``levels``). Time-based
rules (phase overrun, wall-clock budget) are judged at each event's ``ts``. The last element of
every firing's ``evidence`` is the seq of the event that triggered it. Nothing fires after the
run's ``run_ended`` (its records stored later, e.g. the monitor's last reactions, are of a run that
is over) until a ``run_started``.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from msgspec.structs import replace

from swarmlog.escalation.settings import DEFAULT_ESCALATION, EscalationSettings
from swarmlog.events import (
    AgentRegistered,
    CheckpointWritten,
    CircuitClosed,
    CircuitOpened,
    ConfigLoaded,
    DecisionMade,
    DetectorFired,
    Event,
    HardwareSampled,
    Heartbeat,
    MessageSent,
    ModelCallFinished,
    ModelServerSampled,
    PhaseCompleted,
    PhaseEntered,
    PositionTaken,
    RunEnded,
    RunStarted,
    TaskBatched,
    TaskCancelled,
    TaskClaimed,
    TaskCompleted,
    TaskFailed,
    TaskRouted,
    TaskStarted,
    TaskSubmitted,
    TaskTimedOut,
    TrustChanged,
)
from swarmlog.state import claims as rule
from swarmlog.state.claims import (
    CLAIMED,
    DONE,
    EMPTY_CLAIMS,
    FINISHED,
    ROUTED,
    SUBMITTED,
    Claim,
    Claims,
    ready,
)
from swarmlog.state.escalations import elsewhere
from swarmlog.state.pmap import PMap
from swarmlog.team.topology import BROADCAST, normalise_name

__all__ = [
    "DETECTOR_LEVELS",
    "EMPTY",
    "DetectorState",
    "ErrorStreak",
    "PhaseClock",
    "observe",
    "observe_all",
]

# The level each rule triggers (seed §4); runaway's second stage triggers level 3.
DETECTOR_LEVELS: dict[str, int] = {
    "stuck_calls": 1,
    "same_error": 1,
    "conflict": 2,
    "memory": 3,
    "queue_depth": 3,
    "call_latency": 3,
    "vram": 3,
    "offload": 3,
    "critical_bugs": 2,
    "architect_flaw": 2,
    "task_attempts": 2,
    "phase_overrun": 2,
    "trust": 2,
    "budget_tokens": 3,
    "budget_cost": 3,
    "budget_wall": 3,
    "model_outage": 3,  # a model's circuit opened: repeated failures (seed §4, level 3)
    # An agent's EMERGENCY-priority message for the Director (seed §3, emergency meetings:
    # "Director is immediately notified; all other agents pause current work").
    "emergency_message": 2,
}

_EVIDENCE = 10  # seqs kept per condition
_WAITING = frozenset({ROUTED, CLAIMED})  # given a model, not started: still waiting for it
# The events the shared claim rule steps one task with (``swarmlog.state.claims.step``).
_TASK_EVENTS = frozenset(
    {TaskRouted, TaskClaimed, TaskStarted, TaskCompleted, TaskFailed, TaskTimedOut, TaskCancelled}
)
_APPROVE = frozenset({"approve", "approved", "accept", "agree"})
_REJECT = frozenset({"reject", "rejected", "block", "disagree"})


class ErrorStreak(msgspec.Struct, frozen=True, kw_only=True):
    """Consecutive identical errors of one agent."""

    text: str
    count: int
    seqs: tuple[int, ...]
    last_kind: str = ""
    last_task: str = ""


class PhaseClock(msgspec.Struct, frozen=True, kw_only=True):
    """The phase in progress and how many overrun stages have fired for it."""

    phase: str
    entered_ts: float
    expected_s: float
    seq: int
    stages: int = 0


class DetectorState(msgspec.Struct, frozen=True, kw_only=True):
    """What the detectors remember between events; rebuilt by folding the log."""

    seq: int = 0
    run: str = ""  # the run in progress (its run_started's id)
    roles: dict[str, str] = {}
    trust: dict[str, float] = {}
    calls: dict[str, tuple[int, ...]] = {}  # agent -> model calls since its last completion
    errors: dict[str, ErrorStreak] = {}
    # The run's tasks as both boards see them: each task's ``Claim`` and the run's ``Claims``,
    # stepped through the shared rule (``swarmlog.state.claims``) by the same events.
    tasks: PMap[Claim] = PMap()
    deps: PMap[tuple[str, ...]] = PMap()  # task -> its dependencies (tasks that have some)
    claims: Claims = EMPTY_CLAIMS
    # The queue (seed §4, "queue depth > 50 requests"), derived from the claims: the run's tasks
    # that could run now but have not started, i.e. ready to route (in the pool, every dependency
    # done) or routed or claimed, by the seq they entered it; a task in the pool still waiting for
    # its dependencies is in ``blocked`` instead.
    queued: dict[str, int] = {}
    blocked: dict[str, tuple[str, ...]] = {}  # task -> its dependencies, not all done yet
    done: frozenset[str] = frozenset()  # the run's completed tasks
    attempts: dict[str, tuple[int, ...]] = {}  # task -> claim seqs
    phase: PhaseClock | None = None
    run_start_ts: float = 0.0
    run_start_seq: int = 0
    budget_tokens: int = 0  # from run_started; 0 = use settings
    budget_cost: float = 0.0
    budget_wall_s: float = 0.0
    tokens: int = 0
    cost: float = 0.0
    call_usage: dict[str, tuple[int, float]] = {}  # task -> tokens, cost counted from its calls
    positions: dict[str, dict[str, tuple[str, float, int, int]]] = {}  # review -> agent -> pos
    active: frozenset[str] = frozenset()  # conditions that fired and have not cleared
    fired_through: int = 0  # the highest trigger seq of a detector_fired seen in the log
    ended: bool = False  # the run's run_ended was folded (a run_started clears it)


EMPTY = DetectorState()


class _Out:
    """Collects firings and condition changes while one event is observed."""

    def __init__(self, state: DetectorState, event: Event, settings: EscalationSettings) -> None:
        self.event = event
        self.settings = settings
        self.active = set(state.active)
        self.fired: list[DetectorFired] = []

    def fire(
        self,
        detector: str,
        cond: str,
        message: str,
        *,
        value: float,
        threshold: float,
        evidence: Iterable[int] = (),
        agent: str = "",
        task_id: str = "",
        model: str = "",
        level: int | None = None,
        once: bool = True,
    ) -> None:
        if once and cond in self.active:
            return
        self.active.add(cond)
        seqs = tuple(sorted({s for s in evidence if s} | {self.event.seq}))[-_EVIDENCE:]
        if seqs[-1] != self.event.seq:  # keep the trigger last even if evidence is newer
            seqs = (*tuple(s for s in seqs if s != self.event.seq), self.event.seq)
        self.fired.append(
            DetectorFired(
                detector=detector,
                level=DETECTOR_LEVELS[detector] if level is None else level,
                message=message,
                agent=agent,
                task_id=task_id,
                model=model,
                value=float(value),
                threshold=float(threshold),
                evidence=seqs,
                run=self.event.run,
                ts=self.event.ts,
                actor="monitor",
            )
        )

    def clear(self, cond: str) -> None:
        self.active.discard(cond)


def observe(
    state: DetectorState, event: Event, settings: EscalationSettings = DEFAULT_ESCALATION
) -> tuple[DetectorState, list[DetectorFired]]:
    """Fold one event; return the new state and the detector firings it caused."""
    out = _Out(state, event, settings)
    state = _fold(state, event, out)
    if state.ended:  # the run is over: nothing fires until the next run_started
        return replace(state, seq=max(state.seq, event.seq)), []
    state = _check_clock(state, event, out)
    return replace(state, seq=max(state.seq, event.seq), active=frozenset(out.active)), out.fired


def observe_all(
    events: Iterable[Event],
    state: DetectorState = EMPTY,
    settings: EscalationSettings = DEFAULT_ESCALATION,
) -> tuple[DetectorState, list[DetectorFired]]:
    """Fold many events; return the final state and every firing, in order."""
    fired: list[DetectorFired] = []
    for event in events:
        state, new = observe(state, event, settings)
        fired.extend(new)
    return state, fired


def _fold(state: DetectorState, event: Event, out: _Out) -> DetectorState:
    s = out.settings
    if type(event) in _TASK_EVENTS:
        state = _step_task(state, event, out)
    match event:
        case RunStarted():
            if state.run_start_seq and event.continues(state.run):
                tasks = state.tasks
                for task_id in state.claims.held:  # the restart gives them an attempt back
                    claim = tasks.get(task_id)
                    if claim is not None:
                        tasks = tasks.set(task_id, rule.resumed(claim))
                if tasks is state.tasks and not state.ended:
                    return state
                return replace(state, ended=False, tasks=tasks)
            out.clear("queue_depth")
            return replace(
                state,
                ended=False,
                run=event.run,
                tasks=PMap(),  # a new run's own tasks (the log keeps every night)
                deps=PMap(),
                claims=rule.new_run(state.claims),
                queued={},
                blocked={},
                done=frozenset(),
                run_start_ts=event.ts,
                run_start_seq=event.seq,
                budget_tokens=event.budget_tokens,
                budget_cost=event.budget_cost,
                budget_wall_s=event.budget_wall_s,
            )
        case RunEnded() if not elsewhere(state.run, event):
            return replace(state, ended=True)
        case AgentRegistered():
            return replace(state, roles={**state.roles, event.agent: event.role.lower()})
        case TrustChanged():
            cond = f"trust:{event.agent}"
            if event.new < s.trust_below:
                out.fire(
                    "trust",
                    cond,
                    f"{event.agent}'s trust fell to {event.new:g} (below {s.trust_below:g})",
                    value=event.new,
                    threshold=s.trust_below,
                    evidence=(event.evidence_seq,),
                    agent=event.agent,
                )
            else:
                out.clear(cond)
            return replace(state, trust={**state.trust, event.agent: event.new})
        case TaskSubmitted():
            task = event.task_id
            if task in state.tasks:
                return state  # submitted again: the first submission stands (as on the board)
            claim = Claim(max_attempts=event.max_attempts)
            deps = state.deps.set(task, event.deps) if event.deps else state.deps
            return _place(state, task, claim, out, state.tasks.set(task, claim), state.claims, deps)
        case ConfigLoaded():
            return replace(state, claims=rule.configure(state.claims, event.config))
        case Heartbeat():
            held = rule.extend(state.claims, event)
            return state if held is state.claims else replace(state, claims=held)
        case TaskBatched():
            return _batch(state, event)
        case TaskCancelled():
            out.clear(f"task_attempts:{event.task_id}")
            return state
        case TaskClaimed():
            claims = (*state.attempts.get(event.task_id, ()), event.seq)[-_EVIDENCE:]
            state = replace(state, attempts={**state.attempts, event.task_id: claims})
            if event.attempt > s.task_attempts:
                stage = 1 + (f"task_attempts:{event.task_id}" in out.active)
                out.fire(
                    "task_attempts",
                    f"task_attempts:{event.task_id}" + ("" if stage == 1 else ":2"),
                    f"task {event.task_id} claimed for attempt {event.attempt} "
                    f"(more than {s.task_attempts})",
                    value=event.attempt,
                    threshold=s.task_attempts,
                    evidence=claims,
                    agent=event.agent,
                    task_id=event.task_id,
                    level=2 if stage == 1 else 3,
                )
                out.active.add(f"task_attempts:{event.task_id}")
            return state
        case TaskCompleted():
            out.clear(f"task_attempts:{event.task_id}")
            out.clear(f"task_attempts:{event.task_id}:2")
            errors = {k: v for k, v in state.errors.items() if k != event.agent}
            calls = {k: v for k, v in state.calls.items() if k != event.agent}
            state = replace(state, calls=calls, errors=errors)
            used_tokens, used_cost = state.call_usage.get(event.task_id, (0, 0.0))
            reported = event.tokens_in + event.tokens_out
            state = replace(
                state,
                tokens=state.tokens + max(0, reported - used_tokens),
                cost=state.cost + max(0.0, event.cost - used_cost),
            )
            return _check_budget(state, out)
        case TaskFailed():
            return _error(state, event.agent, event.error, "task_failed", event.task_id, out)
        case ModelCallFinished():
            return _model_call(state, event, out)
        case HardwareSampled():
            _check_hardware(event, out)
            return state
        case ModelServerSampled():
            _check_offload(event, out)
            return state
        case PositionTaken():
            return _position(_progress(state, event.agent), event, out)
        case CheckpointWritten():
            return _progress(state, event.actor)
        case DecisionMade() if event.review_id:
            state = _progress(state, event.by)
            out.clear(f"conflict:{event.review_id}")
            positions = {k: v for k, v in state.positions.items() if k != event.review_id}
            return replace(state, positions=positions)
        case PhaseEntered():
            clock = PhaseClock(
                phase=event.phase, entered_ts=event.ts, expected_s=event.expected_s, seq=event.seq
            )
            return replace(state, phase=clock)
        case PhaseCompleted():
            if state.phase is not None and state.phase.phase == event.phase:
                return replace(state, phase=None)
            return state
        case CircuitOpened(scope="model"):
            out.fire(
                "model_outage",
                f"model_outage:{event.target}",
                f"model {event.target} is out of service ({event.reason}); its work waits or "
                f"goes to another model",
                value=event.failures,
                threshold=0,
                model=event.target,
            )
            return state
        case CircuitClosed(scope="model"):
            out.clear(f"model_outage:{event.target}")
            return state
        case MessageSent(priority="EMERGENCY") if s.emergency_messages:
            _emergency_message(state, event, out)
            return state
        case DetectorFired() if event.evidence:
            return replace(state, fired_through=max(state.fired_through, event.evidence[-1]))
    return state


def _progress(state: DetectorState, agent: str) -> DetectorState:
    """Forget an agent's calls without progress: it produced a result."""
    if agent not in state.calls:
        return state
    return replace(state, calls={k: v for k, v in state.calls.items() if k != agent})


def _step_task(state: DetectorState, event: Event, out: _Out) -> DetectorState:
    """Step one task event through the shared claim rule, as both boards do (a task not submitted
    in this run, or finished, changes no more), and put the task where its new status says."""
    task_id: str = getattr(event, "task_id", "")
    before = state.tasks.get(task_id)
    if before is None or before.status in FINISHED:
        return state
    claims, after = rule.step(state.claims, before, event)
    if after is before:
        return state  # void (a losing claim, or no slot free)
    return _place(state, task_id, after, out, state.tasks.set(task_id, after), claims, state.deps)


def _batch(state: DetectorState, event: TaskBatched) -> DetectorState:
    """Routed members of a batch share one call (a claim for one of them takes no new slot)."""
    tasks = state.tasks
    for task_id in event.task_ids:
        before = tasks.get(task_id)
        if before is None:
            continue
        after = rule.batch(before, event)
        if after is not before:
            tasks = tasks.set(task_id, after)
    return state if tasks is state.tasks else replace(state, tasks=tasks)


def _place(
    state: DetectorState,
    task_id: str,
    claim: Claim,
    out: _Out,
    tasks: PMap[Claim],
    claims: Claims,
    deps_of: PMap[tuple[str, ...]],
) -> DetectorState:
    """Take the run's new ``tasks``, ``claims`` and ``deps_of`` and put ``task_id`` where
    ``claim`` says: in the queue (from this event on, unless it is there already) while it is
    ready to route or routed or claimed, in ``blocked`` while it waits in the pool for its
    dependencies, else in neither (it started or finished); a task done now lets the tasks waiting
    for it in. Checks the queue's depth when it changed."""
    pool = claim.status == SUBMITTED
    deps = (deps_of.get(task_id) or ()) if pool else ()
    waiting = claim.status in _WAITING or (pool and ready(SUBMITTED, deps, state.done))
    pooled = pool and not waiting
    before = queued = state.queued
    blocked = state.blocked
    if waiting != (task_id in queued):
        queued = (
            {**queued, task_id: out.event.seq}
            if waiting
            else {k: v for k, v in queued.items() if k != task_id}
        )
    if pooled != (task_id in blocked):
        blocked = (
            {**blocked, task_id: deps}
            if pooled
            else {k: v for k, v in blocked.items() if k != task_id}
        )
    state = replace(state, tasks=tasks, claims=claims, deps=deps_of, queued=queued, blocked=blocked)
    if claim.status == DONE:
        state = _unblock(state, task_id, out.event.seq)
    return state if state.queued is before else _check_queue(state, out)


def _unblock(state: DetectorState, task_id: str, seq: int) -> DetectorState:
    """``task_id`` is done: the tasks waiting for it whose dependencies are all done now join the
    queue at ``seq``."""
    if task_id in state.done:
        return state
    done = state.done | {task_id}
    now = [t for t, deps in state.blocked.items() if ready(SUBMITTED, deps, done)]
    if not now:
        return replace(state, done=done)
    joined = set(now)
    blocked = {t: deps for t, deps in state.blocked.items() if t not in joined}
    queued = {**state.queued, **dict.fromkeys(now, seq)}
    return replace(state, done=done, blocked=blocked, queued=queued)


def _check_queue(state: DetectorState, out: _Out) -> DetectorState:
    limit = out.settings.queue_depth
    depth = len(state.queued)
    if depth > limit:
        out.fire(
            "queue_depth",
            "queue_depth",
            f"{depth} ready tasks wait to start (more than {limit})",
            value=depth,
            threshold=limit,
            evidence=sorted(state.queued.values())[-_EVIDENCE:],
        )
    else:
        out.clear("queue_depth")
    return state


def _error(
    state: DetectorState, agent: str, text: str, kind: str, task_id: str, out: _Out
) -> DetectorState:
    if not agent or not text:
        return state
    seq = out.event.seq
    streak = state.errors.get(agent)
    if streak is None or streak.text != text:
        streak = ErrorStreak(text=text, count=1, seqs=(seq,), last_kind=kind, last_task=task_id)
    elif (
        kind == "task_failed"
        and streak.last_kind == "model_call_finished"
        and (streak.last_task == task_id)
    ):
        # The failure that reports the call's own error is the same occurrence, not a repeat.
        streak = replace(streak, seqs=(*streak.seqs, seq)[-_EVIDENCE:], last_kind=kind)
    else:
        streak = replace(
            streak,
            count=streak.count + 1,
            seqs=(*streak.seqs, seq)[-_EVIDENCE:],
            last_kind=kind,
            last_task=task_id,
        )
    limit = out.settings.same_error_repeats
    if streak.count >= limit:
        out.fire(
            "same_error",
            f"same_error:{agent}",
            f"{agent} hit the same error {streak.count} times: {text[:200]}",
            value=streak.count,
            threshold=limit,
            evidence=streak.seqs,
            agent=agent,
            task_id=task_id,
            once=False,
        )
        errors = {k: v for k, v in state.errors.items() if k != agent}
        return replace(state, errors=errors)
    return replace(state, errors={**state.errors, agent: streak})


def _model_call(state: DetectorState, event: ModelCallFinished, out: _Out) -> DetectorState:
    s = out.settings
    tokens = event.prompt_tokens + event.completion_tokens
    if event.task_id:
        used_t, used_c = state.call_usage.get(event.task_id, (0, 0.0))
        usage = {**state.call_usage, event.task_id: (used_t + tokens, used_c + event.cost)}
        state = replace(state, call_usage=usage)
    state = replace(state, tokens=state.tokens + tokens, cost=state.cost + event.cost)
    state = _check_budget(state, out)
    limit_ms = s.call_latency_s * 1000.0
    cond = f"call_latency:{event.model}"
    if event.total_ms > limit_ms:
        out.fire(
            "call_latency",
            cond,
            f"a call to {event.model} took {event.total_ms / 1000:.1f} s "
            f"(more than {s.call_latency_s:g} s)",
            value=event.total_ms / 1000.0,
            threshold=s.call_latency_s,
            agent=event.agent,
            task_id=event.task_id,
            model=event.model,
        )
    elif event.outcome == "ok" or event.total_ms:
        out.clear(cond)
    if not event.agent:
        return state
    calls = (*state.calls.get(event.agent, ()), event.seq)
    if len(calls) >= s.stuck_calls:
        out.fire(
            "stuck_calls",
            f"stuck_calls:{event.agent}",
            f"{event.agent} made {len(calls)} model calls without completing a task",
            value=len(calls),
            threshold=s.stuck_calls,
            evidence=calls,
            agent=event.agent,
            task_id=event.task_id,
            model=event.model,
            once=False,
        )
        calls = ()
    state = replace(state, calls={**state.calls, event.agent: calls})
    if event.outcome != "ok":
        text = event.error or event.outcome
        state = _error(state, event.agent, text, "model_call_finished", event.task_id, out)
    return state


def _check_hardware(event: HardwareSampled, out: _Out) -> None:
    s = out.settings
    host = event.host or "host"
    cond = f"memory:{host}"
    if event.ram_percent > s.memory_percent:
        out.fire(
            "memory",
            cond,
            f"memory use on {host} is {event.ram_percent:g}% (more than {s.memory_percent:g}%)",
            value=event.ram_percent,
            threshold=s.memory_percent,
        )
    else:
        out.clear(cond)
    for gpu in event.gpus:
        cond = f"vram:{host}:{gpu.index}"
        percent = 100.0 * gpu.mem_used / gpu.mem_total if gpu.mem_total else 0.0
        if percent > s.vram_percent:
            out.fire(
                "vram",
                cond,
                f"GPU {gpu.index} on {host} has {percent:.1f}% of its VRAM in use "
                f"(more than {s.vram_percent:g}%)",
                value=round(percent, 3),
                threshold=s.vram_percent,
            )
        else:
            out.clear(cond)


def _check_offload(event: ModelServerSampled, out: _Out) -> None:
    if not out.settings.offload or not event.reachable:
        return
    partial = {m.name: m for m in event.resident if m.size and m.size_vram < m.size}
    prefix = f"offload:{event.endpoint}:"
    for cond in [c for c in out.active if c.startswith(prefix)]:
        if cond[len(prefix) :] not in partial:
            out.clear(cond)
    for name, m in sorted(partial.items()):
        share = 100.0 * m.size_vram / m.size
        out.fire(
            "offload",
            prefix + name,
            f"{name} on {event.endpoint} runs partly on the CPU: {share:.0f}% of it in VRAM",
            value=m.size_vram,
            threshold=m.size,
            model=name,
        )


def _role(state: DetectorState, agent: str) -> str:
    return state.roles.get(agent, agent.lower())


def _emergency_message(state: DetectorState, event: MessageSent, out: _Out) -> None:
    """An EMERGENCY for the Director (or everyone) calls an emergency meeting, unless the
    Director sent it: the Director is the one who answers emergencies."""
    to = normalise_name(event.to)
    if to not in ("director", BROADCAST) or _role(state, event.sender) == "director":
        return
    subject = event.content.strip().splitlines()[0][:200] if event.content.strip() else event.type
    out.fire(
        "emergency_message",
        f"emergency_message:{event.msg_id}",
        f"{event.sender} raised an EMERGENCY ({event.type}) for the Director: {subject}",
        value=1.0,
        threshold=0.0,
        agent=normalise_name(event.sender),
    )


def _position(state: DetectorState, event: PositionTaken, out: _Out) -> DetectorState:
    s = out.settings
    role = _role(state, event.agent)
    if role == "inspector" and event.critical_bugs > s.critical_bugs:
        out.fire(
            "critical_bugs",
            f"critical_bugs:{event.review_id}:{event.agent}:{event.round}",
            f"{event.agent} found {event.critical_bugs} critical bugs in review "
            f"{event.review_id} (more than {s.critical_bugs})",
            value=event.critical_bugs,
            threshold=s.critical_bugs,
            agent=event.agent,
        )
    if (
        role == "architect"
        and s.architect_flaw
        and (event.fundamental_flaw or event.stance.lower() in _REJECT)
    ):
        out.fire(
            "architect_flaw",
            f"architect_flaw:{event.review_id}:{event.agent}:{event.round}",
            f"{event.agent} flags a fundamental design flaw in review {event.review_id}: "
            f"{event.rationale[:200]}".rstrip(": "),
            value=1.0,
            threshold=0.0,
            agent=event.agent,
        )
    review = dict(state.positions.get(event.review_id, {}))
    review[event.agent] = (event.stance.lower(), event.confidence, event.round, event.seq)
    latest = max(r for _, _, r, _ in review.values())
    current = {a: p for a, p in review.items() if p[2] == latest}
    approve = {a: p for a, p in current.items() if p[0] in _APPROVE}
    reject = {a: p for a, p in current.items() if p[0] in _REJECT}
    cond = f"conflict:{event.review_id}"

    def weight(group: dict[str, tuple[str, float, int, int]]) -> float:
        return sum(state.trust.get(a, s.default_trust) * max(p[1], 0.0) for a, p in group.items())

    w_approve, w_reject = weight(approve), weight(reject)
    total = w_approve + w_reject
    disagreement = min(w_approve, w_reject) / total if total else 0.0
    if approve and reject and disagreement > s.conflict_disagreement:
        out.fire(
            "conflict",
            cond,
            f"review {event.review_id} round {latest}: {', '.join(sorted(approve))} approve, "
            f"{', '.join(sorted(reject))} reject (trust-weighted disagreement "
            f"{disagreement:.2f})",
            value=round(disagreement, 4),
            threshold=s.conflict_disagreement,
            evidence=[p[3] for p in current.values()],
            agent=event.agent,
        )
    else:
        out.clear(cond)
    return replace(state, positions={**state.positions, event.review_id: review})


def _check_budget(state: DetectorState, out: _Out) -> DetectorState:
    b = out.settings.budget
    tokens_limit = state.budget_tokens or b.tokens
    cost_limit = state.budget_cost or b.cost
    if tokens_limit and state.tokens > tokens_limit:
        out.fire(
            "budget_tokens",
            "budget_tokens",
            f"the run used {state.tokens} tokens (budget {tokens_limit})",
            value=state.tokens,
            threshold=tokens_limit,
        )
    if cost_limit and state.cost > cost_limit:
        out.fire(
            "budget_cost",
            "budget_cost",
            f"the run cost {state.cost:.4f} (budget {cost_limit:g})",
            value=state.cost,
            threshold=cost_limit,
        )
    return state


def _check_clock(state: DetectorState, event: Event, out: _Out) -> DetectorState:
    s = out.settings
    wall_limit = state.budget_wall_s or s.budget.wall_s
    if wall_limit and state.run_start_seq and event.ts - state.run_start_ts > wall_limit:
        out.fire(
            "budget_wall",
            "budget_wall",
            f"the run has been going {event.ts - state.run_start_ts:.0f} s "
            f"(budget {wall_limit:g} s)",
            value=round(event.ts - state.run_start_ts, 3),
            threshold=wall_limit,
            evidence=(state.run_start_seq,),
        )
    clock = state.phase
    if clock is None or clock.expected_s <= 0:
        return state
    elapsed = event.ts - clock.entered_ts
    # Stage 1 past factor x expected (level 2); stage 2 one more expected duration later (level 3).
    limit = (s.phase_overrun_factor + clock.stages) * clock.expected_s
    if clock.stages < 2 and elapsed > limit:
        out.fire(
            "phase_overrun",
            f"phase_overrun:{clock.phase}:{clock.seq}:{clock.stages}",
            f"phase {clock.phase} has run {elapsed:.0f} s, more than "
            f"{s.phase_overrun_factor + clock.stages:g} x its expected {clock.expected_s:g} s",
            value=round(elapsed / clock.expected_s, 4),
            threshold=s.phase_overrun_factor + clock.stages,
            evidence=(clock.seq,),
            level=2 if clock.stages == 0 else 3,
        )
        return replace(state, phase=replace(clock, stages=clock.stages + 1))
    return state
