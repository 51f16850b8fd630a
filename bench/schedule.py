"""Scheduling quality: a discrete-event simulation of model servers driven by the real router.

Model servers follow Ollama's semantics: parallel slots; a loaded model's requests wait without
limit; a model that is not resident is loaded first (reading its weights from disk), evicting idle
models on its GPU, one load at a time, with later requests waiting behind a pending load; idle
models are evicted after their keep-alive. Decode speed per request comes from the H100 step-time
fixture (bench/llm_step_times_h100.json, at the memory-bandwidth floor its note describes), prefill
from its measured prefill rate; the aggregate throughput grows sublinearly with busy slots.

swarmlog's router (``choose_route`` over the ``RouterState`` fold of the simulated log) is compared
with round-robin, least-busy ((running + 0.5 x waiting) / slots) and lowest-mean-latency baselines
and with a lower bound on any routing policy's makespan (``bounds`` derives each one): the longest
chain; with one model per GPU, the fractional assignment of all work at full-slot capacity, also
from every release time; with two models on a GPU too small for both, the least labelled work plus
one load per change of model along the arrival order (Ollama serves a GPU in arrival order), also
from every release time. A run in which any policy beats the bound stops with an error.

    python bench/schedule.py            # a table
    python bench/schedule.py --json     # one JSON object
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from swarmlog.events import (
    ConfigLoaded,
    EventBase,
    GpuSample,
    HardwareSampled,
    ModelCallFinished,
    ModelServerSampled,
    ResidentModel,
    TaskCompleted,
    TaskStarted,
    TaskSubmitted,
)
from swarmlog.routing import choose_route, project
from swarmlog.routing.complexity import KIND_CAPABILITY, TaskFeatures
from swarmlog.routing.stats import EMPTY, RouterState, apply

FIXTURE = Path(__file__).resolve().parent / "llm_step_times_h100.json"
GIB = 1024.0**3
BANDWIDTH = 3.0e12  # H100 HBM3 bytes/s: the fixture's note
STEP_OVERHEAD_S = 0.0005  # per decode step on top of the bandwidth floor
SLOT_SLOWDOWN = 0.04  # each extra busy slot slows every sequence by 4 %: sublinear aggregate
DISK_BPS = 2.0e9  # cold load reads weights at 2 GB/s


# Model servers


@dataclass
class ModelSpec:
    name: str
    size: str  # fixture key
    gpu: int
    slots: int
    capabilities: tuple[str, ...]
    tier: str
    quant: float = 1.0  # bytes per parameter relative to bf16 weights (0.5 ~ 8-bit)
    keep_alive_s: float = 3600.0

    def rates(self, fixture: dict[str, Any]) -> tuple[float, float, float, float]:
        """Return (decode tok/s single stream, prefill tok/s, weights GiB, load s)."""
        m = fixture["models"][self.size]
        weights = m["weights_gib"] * GIB * self.quant
        decode = 1.0 / (weights / BANDWIDTH + STEP_OVERHEAD_S)
        prefill = m["prefill"]["2048"]["tok_s"] / self.quant
        return decode, prefill, weights / GIB, weights / DISK_BPS


@dataclass
class Request:
    task: str
    arrival: float
    kind: str
    prompt: int
    output: int
    interactive: bool
    model: str = ""
    start: float = 0.0
    remaining: float = 0.0  # decode-equivalent tokens left
    prefill_left: float = 0.0
    ttft: float = 0.0
    load_s: float = 0.0
    done: float = 0.0


@dataclass
class ModelState:
    spec: ModelSpec
    decode: float
    prefill: float
    vram_gb: float
    load_s: float
    resident: bool = False
    loading_until: float | None = None
    idle_since: float = 0.0
    queue: list[Request] = field(default_factory=list)
    running: list[Request] = field(default_factory=list)
    finished: list[float] = field(default_factory=list)  # latencies, for a baseline

    def per_seq_rate(self) -> float:
        n = len(self.running)
        return self.decode / (1.0 + SLOT_SLOWDOWN * max(n - 1, 0))

    def capacity(self) -> float:
        """Aggregate decode-equivalent tokens/s with every slot busy."""
        n = self.spec.slots
        return n * self.decode / (1.0 + SLOT_SLOWDOWN * (n - 1))


class Cluster:
    """GPUs and the model servers on them, advanced on a virtual clock."""

    def __init__(self, specs: list[ModelSpec], gpus_gb: list[float], fixture: dict[str, Any]):
        self.gpus_gb = gpus_gb
        self.models: dict[str, ModelState] = {}
        for s in specs:
            d, p, v, ld = s.rates(fixture)
            self.models[s.name] = ModelState(spec=s, decode=d, prefill=p, vram_gb=v, load_s=ld)
        self.now = 0.0
        self.events: list[EventBase] = []
        self.done: list[Request] = []

    def used_gb(self, gpu: int) -> float:
        return sum(
            m.vram_gb
            for m in self.models.values()
            if m.spec.gpu == gpu and (m.resident or m.loading_until is not None)
        )

    def _emit(self, ev: EventBase) -> None:
        self.events.append(ev)

    def _sample(self, gpu: int) -> None:
        names = tuple(
            ResidentModel(name=m.spec.name)
            for m in self.models.values()
            if m.spec.gpu == gpu and m.resident
        )
        for m in self.models.values():
            if m.spec.gpu == gpu:
                self._emit(
                    ModelServerSampled(ts=self.now, endpoint=f"sim://{m.spec.name}", resident=names)
                )

    def initial_samples(self) -> None:
        gpus = tuple(
            GpuSample(index=i, mem_total=int(gb * GIB), mem_free=int(gb * GIB))
            for i, gb in enumerate(self.gpus_gb)
        )
        self._emit(HardwareSampled(ts=self.now, gpus=gpus))
        for g in range(len(self.gpus_gb)):
            self._sample(g)

    def advance(self, until: float) -> None:
        """Progress every running request to ``until`` (rates are constant in between)."""
        dt = until - self.now
        if dt > 0:
            for m in self.models.values():
                if not m.running:
                    continue
                rate = m.per_seq_rate()
                for r in m.running:
                    work = rate * dt
                    if r.prefill_left > 0:
                        used = min(work, r.prefill_left)
                        r.prefill_left -= used
                        if r.prefill_left <= 1e-9:
                            r.ttft = until - r.start - (r.prefill_left / rate if rate else 0)
                    r.remaining -= work
        self.now = until

    def next_time(self) -> float:
        t = math.inf
        for m in self.models.values():
            if m.loading_until is not None:
                t = min(t, m.loading_until)
            if m.running:
                rate = m.per_seq_rate()
                t = min(t, self.now + min(r.remaining for r in m.running) / rate)
        return t

    def step(self) -> None:
        """Finish loads and requests that are due, then start what can start."""
        for m in self.models.values():
            if m.loading_until is not None and m.loading_until <= self.now + 1e-9:
                m.loading_until = None
                m.resident = True
                m.idle_since = self.now
                self._sample(m.spec.gpu)
            still = []
            for r in m.running:
                if r.remaining <= 1e-6:
                    r.done = self.now
                    self._finish(m, r)
                else:
                    still.append(r)
            if len(still) != len(m.running):
                m.running = still
                if not still:
                    m.idle_since = self.now
        self.dispatch()

    def _finish(self, m: ModelState, r: Request) -> None:
        total = r.done - r.start
        m.finished.append(r.done - r.arrival)
        self.done.append(r)
        self._emit(
            ModelCallFinished(
                ts=self.now,
                model=m.spec.name,
                task_id=r.task,
                ttft_ms=(r.ttft + r.load_s) * 1000,
                total_ms=(total + r.load_s) * 1000,
                load_ms=r.load_s * 1000,
                prompt_tokens=r.prompt,
                completion_tokens=r.output,
            )
        )
        self._emit(TaskCompleted(ts=self.now, task_id=r.task, agent="sim"))

    def _expire(self) -> None:
        for m in self.models.values():
            if (
                m.resident
                and not m.running
                and not m.queue
                and self.now - m.idle_since > m.spec.keep_alive_s
            ):
                m.resident = False
                self._sample(m.spec.gpu)

    def dispatch(self) -> None:
        self._expire()
        for gpu in range(len(self.gpus_gb)):
            on_gpu = [m for m in self.models.values() if m.spec.gpu == gpu]
            if any(m.loading_until is not None for m in on_gpu):
                continue  # one load at a time; everything else on this GPU waits behind it
            waiting_load = [m for m in on_gpu if m.queue and not m.resident]
            # Ollama serves its pending requests in order: a request that needs a load blocks
            # the ones behind it, so resident models start only what arrived before it.
            cutoff = min((m.queue[0].arrival for m in waiting_load), default=math.inf)
            for m in on_gpu:
                while (
                    m.resident
                    and m.queue
                    and len(m.running) < m.spec.slots
                    and m.queue[0].arrival <= cutoff
                ):
                    self._start(m, m.queue.pop(0))
            if not waiting_load:
                continue
            m = min(waiting_load, key=lambda x: x.queue[0].arrival)
            free = self.gpus_gb[gpu] - self.used_gb(gpu)
            victims = sorted(
                (o for o in on_gpu if o.resident and not o.running),
                key=lambda o: (o.spec.keep_alive_s, o.idle_since),
            )
            for o in victims:
                if free >= m.vram_gb:
                    break
                o.resident = False
                free += o.vram_gb
                self._sample(gpu)
            if free >= m.vram_gb:
                m.loading_until = self.now + m.load_s
                for r in m.queue[: m.spec.slots]:
                    r.load_s = m.load_s

    def _start(self, m: ModelState, r: Request) -> None:
        r.start = self.now
        r.prefill_left = r.prompt * m.decode / m.prefill
        r.remaining = r.output + r.prefill_left
        m.running.append(r)
        self._emit(TaskStarted(ts=self.now, task_id=r.task, agent="sim", model=m.spec.name))

    def submit(self, r: Request, model: str) -> None:
        r.model = model
        m = self.models[model]
        if r.interactive:
            k = next((i for i, q in enumerate(m.queue) if not q.interactive), len(m.queue))
            m.queue.insert(k, r)
        else:
            m.queue.append(r)


# Policies


Policy = Callable[[Request, list[str], Cluster, dict[str, Any]], str]


def _eligible(cluster: Cluster, kind: str) -> list[str]:
    cap = KIND_CAPABILITY.get(kind)
    return [
        n
        for n, m in cluster.models.items()
        if cap is None or not m.spec.capabilities or cap in m.spec.capabilities
    ]


def round_robin(r: Request, names: list[str], cluster: Cluster, memo: dict[str, Any]) -> str:
    i = memo.setdefault("rr", 0)
    memo["rr"] = i + 1
    return names[i % len(names)]


def least_busy(r: Request, names: list[str], cluster: Cluster, memo: dict[str, Any]) -> str:
    def load(n: str) -> float:
        m = cluster.models[n]
        return (len(m.running) + 0.5 * len(m.queue)) / m.spec.slots

    return min(names, key=load)


def lowest_mean_latency(
    r: Request, names: list[str], cluster: Cluster, memo: dict[str, Any]
) -> str:
    def mean(n: str) -> float:
        f = cluster.models[n].finished
        return statistics.fmean(f) if f else 0.0

    return min(names, key=mean)


def swarmlog_router(r: Request, names: list[str], cluster: Cluster, memo: dict[str, Any]) -> str:
    state: RouterState = memo["state"]
    decision = choose_route(state, state.pending[r.task])
    memo["routed"] = decision
    return decision.model


# Workloads


@dataclass
class Workload:
    name: str
    specs: list[ModelSpec]
    gpus_gb: list[float]
    tasks: list[Request]


def _task(rng: random.Random, i: int, t: float, kind: str, interactive: bool = False) -> Request:
    if kind in ("lint", "format"):
        prompt, out = rng.randint(300, 1500), rng.randint(60, 200)
    elif kind == "refactor":
        prompt, out = rng.randint(2000, 6000), rng.randint(500, 1100)
    else:
        prompt, out = rng.randint(3000, 8000), rng.randint(1000, 2000)
    return Request(f"t{i}", t, kind, prompt, out, interactive)


def _kind(rng: random.Random) -> str:
    x = rng.random()
    return (
        "lint" if x < 0.5 else "format" if x < 0.8 else "refactor" if x < 0.95 else "architecture"
    )


ALL_CAPS = ("syntax", "format", "lint", "architecture", "refactor", "security")


def workloads(seed: int, n: int) -> list[Workload]:
    rng = random.Random(seed)
    fast = ModelSpec("fast", "qwen2.5-1.5b", 1, 4, ("syntax", "format", "lint"), "fast")
    deep = ModelSpec("deep", "qwen2.5-32b", 0, 2, ALL_CAPS, "deep")
    seed_tasks = [_task(rng, i, rng.uniform(0, 20), _kind(rng)) for i in range(n)]
    bursty: list[Request] = []
    for b in range(6):
        for _ in range(n // 6):
            i = len(bursty)
            inter = rng.random() < 0.15
            kind = "lint" if inter else _kind(rng)
            bursty.append(_task(rng, i, b * 60 + rng.uniform(0, 2), kind, inter))
    small_fast = ModelSpec("fast", "qwen2.5-7b", 0, 4, ALL_CAPS[:3], "fast")
    small_deep = ModelSpec("deep", "qwen2.5-32b", 0, 2, ALL_CAPS, "deep", quant=0.5)
    small = [_task(rng, i, rng.uniform(0, 60), _kind(rng)) for i in range(n // 2)]
    return [
        Workload("seed_mix", [fast, deep], [80.0, 80.0], seed_tasks),
        Workload("bursty_interactive", [fast, deep], [80.0, 80.0], bursty),
        Workload("small_gpu", [small_fast, small_deep], [40.0], small),
    ]


# Simulation and the lower bound


def simulate(w: Workload, policy: Policy, fixture: dict[str, Any]) -> tuple[float, float, float]:
    """Return (makespan, p95 latency, the last request's completion) for one policy."""
    cluster = Cluster(w.specs, w.gpus_gb, fixture)
    models_cfg = {
        s.name: {
            "endpoint": f"sim://{s.name}",
            "model": s.name,
            "api": "sim",
            "capabilities": list(s.capabilities),
            "parallel": s.slots,
            "gpu": s.gpu,
            "tier": s.tier,
            # The simulation sizes models and GPUs in GiB; the router reads GB (1e9 bytes).
            "vram_gb": cluster.models[s.name].vram_gb * GIB / 1e9,
            "decode_tps": round(cluster.models[s.name].decode, 3),
            "prefill_tps": round(cluster.models[s.name].prefill, 3),
            "load_s": round(cluster.models[s.name].load_s, 3),
            "keep_alive": s.keep_alive_s,
            "context_length": 32768,
        }
        for s in w.specs
    }
    for name in _initially_resident(w, cluster):
        cluster.models[name].resident = True
    cluster.events.append(
        ConfigLoaded(ts=0.0, config={"models": models_cfg, "limits": {"queue_depth": 100000}})
    )
    cluster.initial_samples()
    memo: dict[str, Any] = {"state": EMPTY}
    fold = policy is swarmlog_router

    def sync() -> None:
        if fold:
            state = memo["state"]
            for ev in cluster.events:
                state = apply(state, ev)
            memo["state"] = state
        cluster.events.clear()

    sync()
    arrivals = sorted(w.tasks, key=lambda r: (r.arrival, r.task))
    arrivals = [Request(**r.__dict__) for r in arrivals]
    heap = [(r.arrival, i) for i, r in enumerate(arrivals)]
    heapq.heapify(heap)
    while heap or any(m.queue or m.running or m.loading_until for m in cluster.models.values()):
        t_arr = heap[0][0] if heap else math.inf
        t_next = cluster.next_time()
        t = min(t_arr, t_next)
        if t == math.inf:
            raise RuntimeError(f"{w.name}: simulation stalled at t={cluster.now}")
        cluster.advance(t)
        cluster.step()
        while heap and heap[0][0] <= cluster.now:
            _, i = heapq.heappop(heap)
            r = arrivals[i]
            cluster.events.append(
                TaskSubmitted(
                    ts=cluster.now,
                    task_id=r.task,
                    title=r.task,
                    task_kind=r.kind,
                    prompt="x" * (4 * r.prompt),
                    interactive=r.interactive,
                )
            )
            sync()
            names = _eligible(cluster, r.kind)
            model = policy(r, names, cluster, memo)
            if fold:
                cluster.events.append(memo.pop("routed"))
            cluster.submit(r, model)
            cluster.dispatch()
            sync()
        sync()
    first = min(r.arrival for r in arrivals)
    lat = sorted(r.done - r.arrival for r in cluster.done)
    p95 = lat[min(len(lat) - 1, math.ceil(0.95 * len(lat)) - 1)]
    return max(r.done for r in cluster.done) - first, p95, len(cluster.done)


def _cost_rows(w: Workload, ms: list[ModelState]) -> list[list[float]]:
    """Per task in arrival order: seconds of its model's full-slot capacity (inf: not capable)."""
    rows = []
    for r in sorted(w.tasks, key=lambda r: (r.arrival, r.task)):
        cap = KIND_CAPABILITY.get(r.kind)
        rows.append(
            [
                (r.output + r.prompt * m.decode / m.prefill) / m.capacity()
                if cap is None or cap in m.spec.capabilities
                else math.inf
                for m in ms
            ]
        )
    return rows


def _swaps_bound(costs: list[list[float]], loads: list[float], start: int | None) -> float:
    """Least GPU time of any labelling when every change of model in arrival order is a load.

    Exact minimum over all 2**n labellings by dynamic programming over two states: the model the
    last task (in arrival order) was given. ``start`` is the model resident at the start, if any.
    """
    best = [0.0 if start == j else loads[j] for j in range(2)]  # before the first task
    for row in costs:
        best = [min(best[j], best[1 - j] + loads[j]) + row[j] for j in range(2)]
    return min(best)


def bounds(w: Workload, fixture: dict[str, Any]) -> dict[str, float]:
    """Return the lower bounds on any policy's makespan, by name; the largest one binds.

    Makespan is measured from the first arrival. Every bound holds for every routing policy on the
    simulated servers (the router only picks a model per task; the servers decide the rest):

    - ``chain``: the latest arrival plus its task's shortest possible run (alone on the fastest
      capable model, no load).
    - ``work`` (models on separate GPUs, always resident): the fractional assignment of all work
      to the models at full-slot capacity (aggregate throughput only grows with busy slots, so
      no schedule does better); ``release`` refines it: for a time t, the work that arrives at or
      after t starts no earlier than t, so makespan >= (t - first) + work bound of that work.
    - ``swaps`` (two models on one GPU too small for both): the GPU serves one model at a time
      and a load overlaps no work (the model it replaces must be idle to be evicted). Ollama
      serves requests in arrival order across the GPU: a request that needs a load holds back
      every later one, so with distinct arrival times, tasks served in one residency of a model
      are consecutive in arrival order, and every change of model along the arrival order costs
      a load. Hence makespan >= the least, over every labelling of tasks with capable models, of
      the labelled work at full-slot capacity plus one load per change (and one for the first
      model unless it starts resident). Computed exactly by ``_swaps_bound``; only applied when
      no task is interactive (interactive requests jump their model's queue) and arrival times
      are distinct. ``release`` refines it as above, with whichever model resident for free.
      ``relaxed`` is the same without arrival order (each task's cheapest model plus the loads
      that cannot be avoided): the best a server that reordered requests across models could
      approach; reported, not used.
    """
    cluster = Cluster(w.specs, w.gpus_gb, fixture)
    ms = list(cluster.models.values())
    tasks = sorted(w.tasks, key=lambda r: (r.arrival, r.task))
    first = tasks[0].arrival
    costs = _cost_rows(w, ms)
    out: dict[str, float] = {}
    chain = 0.0
    for r in tasks:
        cap = KIND_CAPABILITY.get(r.kind)
        alone = min(
            (r.output + r.prompt * m.decode / m.prefill) / m.decode
            for m in ms
            if cap is None or cap in m.spec.capabilities
        )
        chain = max(chain, r.arrival - first + alone)
    out["chain"] = chain
    # Sample release times: every len/24-th arrival (any t gives a valid bound).
    step = max(1, len(tasks) // 24)
    cuts = range(step, len(tasks), step)
    gpus = {m.spec.gpu for m in ms}
    shared = len(ms) == 2 and len(gpus) == 1 and ms[0].vram_gb + ms[1].vram_gb > w.gpus_gb[0]
    if shared:
        loads = [m.load_s for m in ms]
        start = _initially_resident(w, cluster)
        resident = next((j for j, m in enumerate(ms) if m.spec.name in start), None)
        relaxed = sum(min(row) for row in costs)
        for j, m in enumerate(ms):
            needed = any(all(c == math.inf for k, c in enumerate(row) if k != j) for row in costs)
            if needed and m.spec.name not in start:
                relaxed += m.load_s
        out["relaxed"] = relaxed
        distinct = len({r.arrival for r in tasks}) == len(tasks)
        if distinct and not any(r.interactive for r in tasks):
            out["swaps"] = _swaps_bound(costs, loads, resident)
            out["release"] = max(
                tasks[i].arrival - first + min(_swaps_bound(costs[i:], loads, j) for j in (0, 1))
                for i in cuts
            )
    elif len(ms) == 2 and len(gpus) == 2 and all(m.vram_gb <= w.gpus_gb[m.spec.gpu] for m in ms):
        out["work"] = _two_machine_lp(costs)
        out["release"] = max(tasks[i].arrival - first + _two_machine_lp(costs[i:]) for i in cuts)
    else:
        raise ValueError(f"{w.name}: no lower bound for this layout of models and GPUs")
    return out


def lower_bound(w: Workload, fixture: dict[str, Any]) -> float:
    """Return the binding lower bound on any policy's makespan (see ``bounds``)."""
    return max(v for k, v in bounds(w, fixture).items() if k != "relaxed")


def _initially_resident(w: Workload, cluster: Cluster) -> set[str]:
    """Return the models resident at t=0: in order, those that still fit on their GPU."""
    used = [0.0] * len(w.gpus_gb)
    out = set()
    for m in cluster.models.values():
        if used[m.spec.gpu] + m.vram_gb <= w.gpus_gb[m.spec.gpu]:
            used[m.spec.gpu] += m.vram_gb
            out.add(m.spec.name)
    return out


def _two_machine_lp(costs: list[list[float]]) -> float:
    """Fractional makespan of two unrelated machines: the least T both can finish the work in.

    For a given T, machine 0 best takes the tasks with the lowest cost ratio c0/c1 first (a
    fractional knapsack); T is found by bisection.
    """
    order = sorted(costs, key=lambda c: (c[0] / c[1]) if c[1] < math.inf else -math.inf)
    lo, hi = 0.0, sum(min(c) for c in costs) * 2 + 1

    def feasible(t: float) -> bool:
        left = t  # capacity of machine 0
        load1 = 0.0
        for a, b in order:
            if a == math.inf:
                load1 += b
            elif left >= a:
                left -= a
            elif b == math.inf:
                return False
            else:
                take = left / a
                left = 0.0
                load1 += (1 - take) * b
        return load1 <= t

    for _ in range(60):
        mid = (lo + hi) / 2
        if feasible(mid):
            hi = mid
        else:
            lo = mid
    return hi


def decision_us(profiles: int = 16, reps: int = 3000) -> float:
    """Median microseconds of one choose_route over a state with 16 profiles and some load."""
    models = {
        f"m{i:02d}": {
            "endpoint": f"sim://m{i}",
            "model": f"m{i}",
            "capabilities": ["lint", "format", "syntax"] if i % 2 else [],
            "parallel": 1 + i % 4,
            "tier": "fast" if i % 2 else "deep",
            "vram_gb": 2.0 + i,
            "cost_per_1k_tokens": {"input": 0.01 * i, "output": 0.02 * i},
        }
        for i in range(profiles)
    }
    evs: list[EventBase] = [ConfigLoaded(seq=1, ts=1.0, config={"models": models})]
    for i in range(profiles):
        evs.append(
            ModelServerSampled(
                seq=len(evs) + 1,
                ts=1.0,
                endpoint=f"sim://m{i}",
                resident=(ResidentModel(name=f"m{i}"),),
            )
        )
    state = project(evs)
    for i in range(40):
        t = TaskSubmitted(
            seq=len(evs) + 1, ts=2.0 + i, task_id=f"w{i}", title="w", task_kind="lint"
        )
        state = apply(state, t)
        state = apply(state, choose_route(state, state.pending[f"w{i}"]))
    task = TaskFeatures(task_id="probe", task_kind="lint", prompt_tokens=800)
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        choose_route(state, task)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


def evaluate(
    w: Workload,
    policies: dict[str, Policy],
    fixture: dict[str, Any],
    rows: list[tuple[str, str, float, float, float]],
) -> dict[str, Any]:
    """Run every policy on one workload; append table rows; return its JSON figures."""
    parts = bounds(w, fixture)
    bound = lower_bound(w, fixture)
    res = {name: simulate(w, p, fixture) for name, p in policies.items()}
    for name, (mk, p95, n) in res.items():
        if n != len(w.tasks):
            raise RuntimeError(f"{w.name}/{name}: {n} of {len(w.tasks)} tasks finished")
        if mk < bound * (1 - 1e-9):
            raise RuntimeError(f"{w.name}/{name}: makespan {mk} beats the lower bound {bound}")
        rows.append((w.name, name, mk, mk / bound, p95))
    ours = res["swarmlog"]
    return {
        "makespan_over_bound": round(ours[0] / bound, 4),
        "vs_round_robin": round(ours[0] / res["round_robin"][0], 4),
        "p95_latency_s": round(ours[1], 3),
        "makespan_s": round(ours[0], 3),
        "lower_bound_s": round(bound, 3),
        "bounds_s": {k: round(v, 3) for k, v in parts.items()},
        # no policy can do better than this against round-robin
        "bound_vs_round_robin": round(bound / res["round_robin"][0], 4),
        "baselines": {
            n: {"makespan_s": round(r[0], 3), "p95_latency_s": round(r[1], 3)}
            for n, r in res.items()
            if n != "swarmlog"
        },
    }


def _min_median_max(xs: list[float]) -> dict[str, float]:
    return {"min": min(xs), "median": round(statistics.median(xs), 4), "max": max(xs)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--tasks", type=int, default=240, help="tasks in the seed mix (default 240)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--spread",
        type=int,
        default=12,
        metavar="N",
        help="also run the seed mix drawn with seeds 1..N, print the spread (default 12; 0: off)",
    )
    args = ap.parse_args(argv)
    fixture = json.loads(FIXTURE.read_text())
    policies: dict[str, Policy] = {
        "swarmlog": swarmlog_router,
        "round_robin": round_robin,
        "least_busy": least_busy,
        "lowest_mean_latency": lowest_mean_latency,
    }
    out: dict[str, Any] = {"workloads": {}}
    rows: list[tuple[str, str, float, float, float]] = []
    for w in workloads(args.seed, args.tasks):
        out["workloads"][w.name] = evaluate(w, policies, fixture, rows)
    spread = [
        evaluate(workloads(seed, args.tasks)[0], policies, fixture, [])
        for seed in range(1, args.spread + 1)
    ]
    if spread:
        out["seed_mix_spread"] = {
            "seeds": f"1..{args.spread}",
            **{
                key: _min_median_max([d[key] for d in spread])
                for key in ("vs_round_robin", "bound_vs_round_robin", "makespan_over_bound")
            },
        }
    out["decision_us_median"] = round(decision_us(), 2)
    if args.json:
        print(json.dumps(out, sort_keys=True))
        return 0
    print(f"python {platform.python_version()}, {len(w.tasks)} tasks in the last workload")
    print(f"{'workload':<20} {'policy':<20} {'makespan s':>11} {'/ bound':>8} {'p95 s':>9}")
    for wn, pn, mk, ratio, p95 in rows:
        print(f"{wn:<20} {pn:<20} {mk:>11.1f} {ratio:>8.3f} {p95:>9.1f}")
    for wn, d in out["workloads"].items():
        detail = ", ".join(f"{k} {v:.1f}" for k, v in d["bounds_s"].items())
        print(
            f"{wn}: makespan/bound {d['makespan_over_bound']:.3f}, "
            f"vs round-robin {d['vs_round_robin']:.3f} (best possible "
            f"{d['bound_vs_round_robin']:.3f}), lower bound {d['lower_bound_s']:.1f}s ({detail})"
        )
    if spread:
        d = out["seed_mix_spread"]
        print(
            f"seed_mix drawn with seeds {d['seeds']} (min / median / max): "
            + "; ".join(
                f"{k} {d[k]['min']:.3f} / {d[k]['median']:.3f} / {d[k]['max']:.3f}"
                for k in ("vs_round_robin", "bound_vs_round_robin", "makespan_over_bound")
            )
        )
    print(f"decision median {out['decision_us_median']:.1f} us with 16 profiles")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
