"""The router's state as a pure fold of the log: config, open tasks, load, latency statistics.

A restarted router, or a second process, folding the same events reaches the same state, and so
the same decisions. Latencies are peak-EWMAs in *event time*: a worse observation is taken at once,
a better one is blended in with weight ``1 - exp(-dt / tau)``, where ``dt`` is the event-time gap
since the previous observation.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable

import msgspec
from msgspec.structs import replace

from swarmlog.events import (
    CircuitClosed,
    CircuitOpened,
    ConfigLoaded,
    EventBase,
    GpuSample,
    HardwareSampled,
    ModelCallFinished,
    ModelServerSampled,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskRouted,
    TaskStarted,
    TaskSubmitted,
    TaskTimedOut,
)
from swarmlog.routing import breaker
from swarmlog.routing.breaker import Circuit
from swarmlog.routing.complexity import (
    DEFAULT_OUTPUT_TOKENS,
    OUTPUT_TOKENS_PRIOR,
    TaskFeatures,
    features_of,
)
from swarmlog.routing.profile import (
    DEFAULT_DECODE_TPS,
    DEFAULT_PREFILL_TPS,
    Profile,
    RouterConfig,
    infer_tier,
    router_config,
    with_reported_vram,
)

__all__ = [
    "DEFAULT_DECODE_TPS",
    "DEFAULT_PREFILL_TPS",
    "EMPTY",
    "Assignment",
    "Load",
    "ModelStats",
    "RouterState",
    "apply",
    "output_tokens",
    "peak_ewma",
    "project",
    "service_estimate",
]


class ModelStats(msgspec.Struct, frozen=True, kw_only=True):
    """Latency observations of one model profile."""

    ttft_s: float | None = None  # peak-EWMA time to first token
    tpot_s: float | None = None  # peak-EWMA seconds per output token
    load_s: float | None = None  # peak-EWMA cold-load time
    last_obs: float = 0.0
    calls: int = 0
    failures: int = 0
    last_active: float | None = None  # event time it last started or finished work


class Assignment(msgspec.Struct, frozen=True, kw_only=True):
    """A routed task that has not finished: where it went and its expected service time."""

    model: str
    service_s: float
    started: float | None = None
    role: str = ""


class Load(msgspec.Struct, frozen=True, kw_only=True):
    """Aggregates over one model's assignments, kept incrementally for a fast decision."""

    assigned: int = 0
    started: int = 0
    queued_work_s: float = 0.0
    started_work_s: float = 0.0
    started_ts_sum: float = 0.0
    last_routed: int = 0  # RouterState.routed when a task was last routed to it (its FIFO place)


class RouterState(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a routing decision may use; all of it came from the log."""

    seq: int = 0
    clock: float = 0.0  # event time of the latest event folded
    routed: int = 0  # task_routed events folded: orders the models' latest assignments
    config: RouterConfig = RouterConfig()
    pending: dict[str, TaskFeatures] = msgspec.field(default_factory=dict)
    assigned: dict[str, Assignment] = msgspec.field(default_factory=dict)
    load: dict[str, Load] = msgspec.field(default_factory=dict)
    stats: dict[str, ModelStats] = msgspec.field(default_factory=dict)
    circuits: dict[str, Circuit] = msgspec.field(default_factory=dict)
    out_tokens: dict[str, float] = msgspec.field(default_factory=dict)  # EWMA by task kind
    resident: dict[str, tuple[bool, float]] = msgspec.field(default_factory=dict)
    unreachable: dict[str, str] = msgspec.field(default_factory=dict)  # endpoint → error
    gpus: tuple[GpuSample, ...] = ()
    roles: dict[str, int] = msgspec.field(default_factory=dict)  # role → its assigned tasks
    # (endpoint, model) → bytes the server last reported for it loaded (Ollama /api/ps size)
    vram_seen: dict[tuple[str, str], int] = msgspec.field(default_factory=dict)


EMPTY = RouterState()
_NO_LOAD = Load()
_NO_STATS = ModelStats()


def peak_ewma(old: float | None, x: float, dt: float, tau: float) -> float:
    """Fold ``x`` into a peak-EWMA: jump up at once, decay down with event-time weight."""
    if old is None or x >= old:
        return x
    w = math.exp(-max(dt, 0.0) / tau)
    return old * w + x * (1.0 - w)


def _with_load(state: RouterState, model: str, load: Load) -> dict[str, Load]:
    return {**state.load, model: load}


def _unassign(state: RouterState, task_id: str) -> RouterState:
    a = state.assigned.get(task_id)
    if a is None:
        return state
    ld = state.load.get(a.model, _NO_LOAD)
    if a.started is None:
        ld = replace(ld, assigned=ld.assigned - 1, queued_work_s=ld.queued_work_s - a.service_s)
    else:
        ld = replace(
            ld,
            assigned=ld.assigned - 1,
            started=ld.started - 1,
            started_work_s=ld.started_work_s - a.service_s,
            started_ts_sum=ld.started_ts_sum - a.started,
        )
    if ld.assigned == 0:
        ld = _NO_LOAD  # drop float residue
    assigned = dict(state.assigned)
    del assigned[task_id]
    roles = state.roles
    if a.role:
        roles = dict(roles)
        left = roles.pop(a.role, 0) - 1
        if left > 0:
            roles[a.role] = left
    return replace(state, assigned=assigned, load=_with_load(state, a.model, ld), roles=roles)


def _routed(state: RouterState, ev: TaskRouted) -> RouterState:
    state = _unassign(state, ev.task_id)
    profile = state.config.profile(ev.model)
    task = state.pending.get(ev.task_id)
    if profile is None:
        return state
    service = service_estimate(state, profile, task) if task is not None else 0.0
    routed = state.routed + 1
    ld = state.load.get(ev.model, _NO_LOAD)
    ld = replace(
        ld,
        assigned=ld.assigned + 1,
        queued_work_s=ld.queued_work_s + service,
        last_routed=routed,
    )
    circuit = state.circuits.get(ev.model)
    circuits = state.circuits
    if circuit is not None:
        circuits = {**circuits, ev.model: breaker.fold_routed(circuit, ev.task_id, state.clock)}
    role = task.role if task is not None else ""
    roles = state.roles
    if role:
        roles = {**roles, role: roles.get(role, 0) + 1}
    return replace(
        state,
        routed=routed,
        assigned={
            **state.assigned,
            ev.task_id: Assignment(model=ev.model, service_s=service, role=role),
        },
        load=_with_load(state, ev.model, ld),
        circuits=circuits,
        roles=roles,
    )


def _started(state: RouterState, ev: TaskStarted) -> RouterState:
    a = state.assigned.get(ev.task_id)
    if a is None or a.started is not None:
        return state
    ld = state.load.get(a.model, _NO_LOAD)
    ld = replace(
        ld,
        started=ld.started + 1,
        queued_work_s=ld.queued_work_s - a.service_s,
        started_work_s=ld.started_work_s + a.service_s,
        started_ts_sum=ld.started_ts_sum + ev.ts,
    )
    st = state.stats.get(a.model, _NO_STATS)
    return replace(
        state,
        assigned={**state.assigned, ev.task_id: replace(a, started=ev.ts)},
        load=_with_load(state, a.model, ld),
        stats={**state.stats, a.model: replace(st, last_active=ev.ts)},
    )


def _call(state: RouterState, ev: ModelCallFinished) -> RouterState:
    tau = state.config.ewma_tau_s
    st = state.stats.get(ev.model, _NO_STATS)
    dt = ev.ts - st.last_obs if st.calls else 0.0
    failed = ev.outcome in breaker.FAILURE_OUTCOMES
    ttft, tpot, load = st.ttft_s, st.tpot_s, st.load_s
    if not failed:
        if ev.load_ms > 0:
            load = peak_ewma(load, ev.load_ms / 1000.0, dt, tau)
        first_ms = max(ev.ttft_ms - ev.load_ms, 0.0)
        if ev.ttft_ms > 0:
            ttft = peak_ewma(ttft, first_ms / 1000.0, dt, tau)
        decode_ms = ev.total_ms - ev.ttft_ms
        if ev.completion_tokens > 0 and decode_ms > 0:
            tpot = peak_ewma(tpot, decode_ms / 1000.0 / ev.completion_tokens, dt, tau)
    st = ModelStats(
        ttft_s=ttft,
        tpot_s=tpot,
        load_s=load,
        last_obs=ev.ts,
        calls=st.calls + 1,
        failures=st.failures + failed,
        last_active=ev.ts,
    )
    out_tokens = state.out_tokens
    task = state.pending.get(ev.task_id)
    if task is not None and not failed and ev.completion_tokens > 0:
        old = out_tokens.get(task.task_kind)
        new = float(ev.completion_tokens) if old is None else 0.8 * old + 0.2 * ev.completion_tokens
        out_tokens = {**out_tokens, task.task_kind: new}
    circuit = breaker.fold_call(state.circuits.get(ev.model, breaker.CLOSED), ev)
    return replace(
        state,
        stats={**state.stats, ev.model: st},
        out_tokens=out_tokens,
        circuits={**state.circuits, ev.model: circuit},
    )


def _server(state: RouterState, ev: ModelServerSampled) -> RouterState:
    unreachable = dict(state.unreachable)
    if ev.reachable:
        unreachable.pop(ev.endpoint, None)
    else:
        unreachable[ev.endpoint] = ev.error or "unreachable"
    resident = dict(state.resident)
    if not ev.reachable:
        return replace(state, unreachable=unreachable, resident=resident)
    names = {r.name for r in ev.resident}
    for p in state.config.profiles:
        if p.endpoint == ev.endpoint:
            resident[p.name] = (p.model in names, ev.ts)
    seen = state.vram_seen
    config = state.config
    for r in ev.resident:
        size = r.size or r.size_vram  # all of it: what spills to the CPU belongs in VRAM too
        if size > 0 and seen.get((ev.endpoint, r.name)) != size:
            seen = {**seen, (ev.endpoint, r.name): size}
    if seen is not state.vram_seen:
        config = with_reported_vram(config, seen)
    return replace(state, unreachable=unreachable, resident=resident, vram_seen=seen, config=config)


def _finished(state: RouterState, task_id: str, *, keep_pending: bool) -> RouterState:
    state = _unassign(state, task_id)
    if keep_pending or task_id not in state.pending:
        return state
    pending = dict(state.pending)
    del pending[task_id]
    return replace(state, pending=pending)


def apply(state: RouterState, event: EventBase) -> RouterState:
    """Fold one event into the router state."""
    clock = event.ts if event.ts > state.clock else state.clock
    state = replace(state, seq=event.seq, clock=clock)
    match event:
        case ConfigLoaded():
            config = router_config(event.config)
            if state.vram_seen:
                config = with_reported_vram(config, state.vram_seen)
            return replace(state, config=config)
        case TaskSubmitted():
            return replace(state, pending={**state.pending, event.task_id: features_of(event)})
        case TaskRouted():
            return _routed(state, event)
        case TaskStarted():
            return _started(state, event)
        case TaskCompleted() | TaskCancelled():
            return _finished(state, event.task_id, keep_pending=False)
        case TaskFailed():
            return _finished(state, event.task_id, keep_pending=event.retryable)
        case TaskTimedOut():
            return _finished(state, event.task_id, keep_pending=True)
        case ModelCallFinished():
            return _call(state, event)
        case HardwareSampled():
            return replace(state, gpus=event.gpus)
        case ModelServerSampled():
            return _server(state, event)
        case CircuitOpened(scope="model"):
            c = state.circuits.get(event.target, breaker.CLOSED)
            return replace(
                state, circuits={**state.circuits, event.target: breaker.fold_opened(c, event)}
            )
        case CircuitClosed(scope="model"):
            c = state.circuits.get(event.target, breaker.CLOSED)
            return replace(
                state, circuits={**state.circuits, event.target: breaker.fold_closed(c, event)}
            )
    return state


def project(events: Iterable[EventBase], state: RouterState = EMPTY) -> RouterState:
    """Fold many events."""
    return functools.reduce(apply, events, state)


def output_tokens(state: RouterState, task: TaskFeatures) -> int:
    """Return the expected reply length: the kind's observed EWMA, else its prior."""
    seen = state.out_tokens.get(task.task_kind)
    if seen is not None:
        return int(seen)
    return OUTPUT_TOKENS_PRIOR.get(task.task_kind, DEFAULT_OUTPUT_TOKENS)


def service_estimate(
    state: RouterState, profile: Profile, task: TaskFeatures, out: int | None = None
) -> float:
    """Return the expected seconds a task occupies one slot of ``profile`` once it starts."""
    st = state.stats.get(profile.name, _NO_STATS)
    if out is None:
        out = output_tokens(state, task)
    if st.ttft_s is not None:
        ttft = st.ttft_s
    else:
        ttft = task.prompt_tokens / (profile.prefill_tps or DEFAULT_PREFILL_TPS) + 0.05
    if st.tpot_s is not None:
        tpot = st.tpot_s
    else:
        tpot = 1.0 / (profile.decode_tps or DEFAULT_DECODE_TPS.get(infer_tier(profile), 30.0))
    return ttft + out * tpot
