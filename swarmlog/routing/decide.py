"""The routing decision: a pure function of the router state and a task's features.

Hard filters first (the role's pinned model, capabilities, context fit, reachable server, circuit,
VRAM); then each survivor's expected completion time in event time: queue wait from its backlog and
slots, a cold-load (and eviction) penalty when it is not resident, and its service time from
peak-EWMA TTFT and time per output token. The score is that time, plus the service time again
(tier penalty - 1) times when the model's tier differs from the task's, weighted by up to
``cost_weight`` for price; interactive tasks take the lowest expected time. Ties go to a seeded
hash of the task id choosing two candidates (power of two choices), never ``random``.
"""

from __future__ import annotations

import hashlib

from swarmlog.errors import NoRouteAvailable
from swarmlog.events import CandidateScore, TaskRouted, TaskSubmitted
from swarmlog.routing import breaker
from swarmlog.routing.complexity import TaskFeatures, estimate, features_of
from swarmlog.routing.limits import admit
from swarmlog.routing.profile import DEFAULT_LOAD_GBPS, Prepared, Profile, rivals
from swarmlog.routing.stats import RouterState, output_tokens

__all__ = [
    "DEFAULT_LOAD_S",
    "choose_route",
    "expected_load_s",
    "is_resident",
    "rederive_route",
    "tie_hash",
]

DEFAULT_LOAD_S = 10.0
_GB = 1e9  # GB as every size here is given: vram_gb, Ollama's sizes, `swarmlog hw`


def tie_hash(seed: int, task_id: str) -> int:
    """Return the deterministic 64-bit hash that breaks ties for a task."""
    digest = hashlib.blake2b(f"{seed}:{task_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def is_resident(state: RouterState, profile: Profile) -> bool:
    """Say whether the model is (or will be, for work already routed to it) loaded.

    Work routed to a model loads it anyway, so a later task pays no extra load, unless a model
    sharing its GPU and too large to sit beside it was given work after it: Ollama serves a GPU's
    requests in arrival order, so that work evicts it first. Otherwise the newest evidence wins:
    recent activity within keep-alive, or the server's resident list.
    """
    ld = state.load.get(profile.name)
    last = ld.last_routed if ld is not None and ld.assigned > 0 else 0
    others = rivals(profile, state.config.profiles)
    if others and _displaced(state, profile, others, last):
        return False
    if last:
        return True
    return _evidence(state, profile)


def _evidence(state: RouterState, profile: Profile) -> bool:
    st = state.stats.get(profile.name)
    active = st.last_active if st is not None else None
    sample = state.resident.get(profile.name)
    if sample is not None and (active is None or sample[1] >= active):
        return sample[0]
    return active is not None and state.clock - active < profile.keep_alive_s


def _displaced(state: RouterState, p: Profile, others: tuple[Profile, ...], last: int) -> bool:
    """Say whether a rival that cannot sit beside ``p`` on its GPU was routed work after it."""
    if p.gpu is None or p.vram_gb is None:
        return False
    total = _gpu_total_gb(state, p.gpu)
    if total is None:
        return False
    for q in others:
        lq = state.load.get(q.name)
        if (
            lq is not None
            and lq.assigned > 0
            and lq.last_routed > last
            and q.vram_gb is not None
            and p.vram_gb + q.vram_gb > total
        ):
            return True
    return False


def expected_load_s(state: RouterState, profile: Profile) -> float:
    """Return the expected cold-load time: observed, configured, from its size, or a default."""
    st = state.stats.get(profile.name)
    if st is not None and st.load_s is not None:
        return st.load_s
    if profile.load_s is not None:
        return profile.load_s
    if profile.vram_gb is not None:
        return profile.vram_gb / DEFAULT_LOAD_GBPS
    return DEFAULT_LOAD_S


def _backlog_s(state: RouterState, name: str) -> tuple[int, float]:
    ld = state.load.get(name)
    if ld is None:
        return 0, 0.0
    running = ld.started_work_s - (ld.started * state.clock - ld.started_ts_sum)
    return ld.assigned, max(ld.queued_work_s, 0.0) + max(running, 0.0)


def _gpu_total_gb(state: RouterState, index: int) -> float | None:
    """Return a GPU's memory, or None when the sample lacks the GPU or could not read it."""
    for g in state.gpus:
        if g.index == index:
            return g.mem_total / _GB if g.mem_total > 0 else None
    return None


def _vram_check(state: RouterState, p: Profile) -> tuple[bool, str, float]:
    """Return (fits, reason, eviction wait) for a model that is not resident.

    A GPU whose memory NVML could not read (``mem_total`` 0, the query named in its ``errors``)
    is of unknown size: it neither admits nor refuses a model, as with no sample at all.
    """
    if p.vram_gb is None or not state.gpus:
        return True, "", 0.0
    if p.gpu is None:
        if any(g.mem_total <= 0 or g.mem_total / _GB >= p.vram_gb for g in state.gpus):
            return True, "", 0.0
        return False, f"needs {p.vram_gb:g} GB VRAM; no GPU is that large", 0.0
    total = _gpu_total_gb(state, p.gpu)
    if total is None:
        if any(g.index == p.gpu for g in state.gpus):
            return True, "", 0.0  # its memory could not be read: no reason to refuse it
        return False, f"pinned to GPU {p.gpu}, which the last hardware sample lacks", 0.0
    if p.vram_gb > total:
        return False, f"needs {p.vram_gb:g} GB VRAM; GPU {p.gpu} has {total:.1f} GB", 0.0
    used = 0.0
    conflicts = []
    for other in state.config.profiles:
        if other.name == p.name or other.gpu != p.gpu or other.vram_gb is None:
            continue
        if is_resident(state, other):
            used += other.vram_gb
            conflicts.append(other)
    if used + p.vram_gb <= total:
        return True, "", 0.0
    drain = 0.0
    for other in conflicts:
        n, backlog = _backlog_s(state, other.name)
        if n:
            # wait for its work to drain, then count loading it back for the work that follows
            # (Ollama serves the GPU in arrival order: breaking its run costs a swap back)
            drain = max(drain, backlog / other.slots) + expected_load_s(state, other)
    return True, f"evicts {', '.join(o.name for o in conflicts)}", drain


def choose_route(state: RouterState, task: TaskFeatures | TaskSubmitted) -> TaskRouted:
    """Choose a model for a task from the state alone; raise NoRouteAvailable or QueueFull."""
    if isinstance(task, TaskSubmitted):
        task = features_of(task)
    admit(state)
    cx = estimate(task)
    cfg = state.config
    out = output_tokens(state, task)
    need_ctx = cx.prompt_tokens + out
    prompt = task.prompt_tokens
    required = cx.capabilities
    task_tier = cx.tier
    clock = state.clock
    interactive = task.interactive
    extra = cfg.tier_penalty - 1.0
    loads = state.load
    stats = state.stats
    circuits = state.circuits
    unreachable = state.unreachable
    resident_samples = state.resident
    role = task.role
    pin = cfg.pinned(role) if role else None
    tier_notes: dict[str, str] = {}
    # (prepared, reason, expected, score, in_flight); reason None marks a filtered candidate
    rows: list[tuple[Prepared, str, float, float, int, bool]] = []
    max_cost = 0.0
    for pp in cfg.prepared:
        p = pp.profile
        name = pp.name
        ld = loads.get(name)
        in_flight = ld.started if ld is not None else 0
        if pin is not None and name != pin:
            why = f"role {role} is pinned to model {pin} ([agents.{role}].model)"
            rows.append((pp, why, 0.0, 0.0, in_flight, False))
            continue
        if pp.capabilities and not pp.capabilities.issuperset(required):
            missing = ", ".join(c for c in required if c not in pp.capabilities)
            rows.append((pp, f"lacks capability {missing}", 0.0, 0.0, in_flight, False))
            continue
        if need_ctx > p.context_length:
            why = f"{prompt}+{out} tokens exceed context {p.context_length}"
            rows.append((pp, why, 0.0, 0.0, in_flight, False))
            continue
        if unreachable and p.endpoint in unreachable:
            why = f"server unreachable: {unreachable[p.endpoint]}"
            rows.append((pp, why, 0.0, 0.0, in_flight, False))
            continue
        note = ""
        circuit = circuits.get(name)
        if circuit is not None and circuit.state != "closed":
            ok, note = breaker.admits(circuit, clock)
            if not ok:
                rows.append((pp, note, 0.0, 0.0, in_flight, False))
                continue
        st = stats.get(name)
        # Resident? As is_resident: routed work loads it unless a rival on its GPU comes after.
        last = ld.last_routed if ld is not None and ld.assigned > 0 else 0
        if pp.rivals and _displaced(state, p, pp.rivals, last):
            resident = False
        elif last:
            resident = True
        else:
            active = st.last_active if st is not None else None
            sample = resident_samples.get(name)
            if sample is not None and (active is None or sample[1] >= active):
                resident = sample[0]
            else:
                resident = active is not None and clock - active < p.keep_alive_s
        load = 0.0
        if not resident:
            fits, why, drain = _vram_check(state, p)
            if not fits:
                rows.append((pp, why, 0.0, 0.0, in_flight, False))
                continue
            load = drain + expected_load_s(state, p)
            if drain:  # the load term holds the eviction's wait: say how much, so it adds up
                why = f"{why} ({drain:.3f}s of the load waits for its work to drain and reload)"
            note = f"{note}; cold load {why}".strip("; ")
        # Service time: the observed peak-EWMAs, else the priors (stats.service_estimate).
        if st is not None and st.ttft_s is not None:
            ttft = st.ttft_s
        else:
            ttft = prompt / pp.prefill_tps + 0.05
        tpot = st.tpot_s if st is not None and st.tpot_s is not None else pp.tpot_s
        service = ttft + out * tpot
        wait = 0.0
        if ld is not None and ld.assigned >= pp.slots:
            running = ld.started_work_s - (ld.started * clock - ld.started_ts_sum)
            backlog = max(ld.queued_work_s, 0.0) + max(running, 0.0)
            wait = backlog / pp.slots
        expected = wait + load + service
        score = expected
        if not interactive:
            tier = pp.tier
            if tier and tier != task_tier:
                # The wrong tier costs its service time again (penalty - 1) times; the wait
                # is not multiplied, so a long queue elsewhere still spills work over.
                score += service * extra
                mismatch = tier_notes.get(tier)
                if mismatch is None:
                    mismatch = f"tier {tier} != {task_tier}: service x{cfg.tier_penalty:g}"
                    tier_notes[tier] = mismatch
                note = f"{note}; {mismatch}" if note else mismatch
            if pp.cost > max_cost:
                max_cost = pp.cost
        # Only the non-zero terms are spelled out: formatting floats dominates a decision.
        if wait and load:
            reason = f"wait {wait:.3f}s + load {load:.3f}s + service {service:.3f}s"
        elif wait:
            reason = f"wait {wait:.3f}s + service {service:.3f}s"
        elif load:
            reason = f"load {load:.3f}s + service {service:.3f}s"
        else:
            reason = f"service {service:.3f}s"
        if note:
            reason = f"{reason}; {note}"
        rows.append((pp, reason, expected, score, in_flight, True))
    weight = cfg.cost_weight / max_cost if max_cost > 0 else 0.0
    candidates: list[CandidateScore] = []
    best: CandidateScore | None = None
    tied: list[CandidateScore] = []
    for pp, reason, expected, score, in_flight, ok in rows:
        if not ok:
            candidates.append(
                CandidateScore(
                    model=pp.name,
                    eligible=False,
                    reason=reason,
                    in_flight=in_flight,
                    slots=pp.slots,
                )
            )
            continue
        if weight:
            score *= 1.0 + weight * pp.cost
        cand = CandidateScore(
            model=pp.name,
            reason=reason,
            expected_s=round(expected, 6),
            score=round(score, 6),
            in_flight=in_flight,
            slots=pp.slots,
        )
        candidates.append(cand)
        if best is None or cand.score < best.score:
            best = cand
            tied = [cand]
        elif cand.score == best.score:
            tied.append(cand)
    if best is None:
        detail = "; ".join(f"{c.model}: {c.reason}" for c in candidates) or "no models configured"
        raise NoRouteAvailable(
            f"no model can take task {task.task_id!r} (kind {task.task_kind}, needs "
            f"{', '.join(cx.capabilities) or 'nothing'}): {detail}; {_advice(candidates)}"
        )
    why = "lowest expected latency (interactive)" if interactive else "lowest score"
    if len(tied) == 1:
        chosen = best
    else:
        h = tie_hash(cfg.seed, task.task_id)
        first = tied[h % len(tied)]
        second = tied[(h >> 32) % len(tied)]
        load_first = loads.get(first.model)
        load_second = loads.get(second.model)
        n1 = load_first.assigned if load_first else 0
        n2 = load_second.assigned if load_second else 0
        chosen = second if n2 < n1 else first
        why = f"{why}; {len(tied)}-way tie broken by seeded hash (two choices)"
    return TaskRouted(
        task_id=task.task_id,
        model=chosen.model,
        reason=f"{why}: {chosen.reason}",
        tier=task_tier,
        complexity=cx.score,
        prompt_tokens=cx.prompt_tokens,
        capabilities=cx.capabilities,
        candidates=tuple(candidates),
    )


# What to do about each kind of filter, in the words of its reason (see choose_route).
_ADVICE = (
    ("lacks capability", "list the capability in a [models.*] profile's capabilities"),
    ("exceed context", "shorten the prompt or raise a profile's context_length"),
    ("GB VRAM", "lower vram_gb, free GPU memory or pin the model to a larger GPU (gpu = N)"),
    ("pinned to GPU", "set [models.*].gpu to a GPU 'swarmlog hw' lists"),
    ("is pinned to model", "change or remove [agents.ROLE].model"),
    ("server unreachable", "start the model server ('swarmlog doctor' checks it)"),
    ("circuit", "wait for the circuit to half-open"),
)


def _advice(candidates: list[CandidateScore]) -> str:
    """Say what would let some model take the task, for the filters that stopped each."""
    reasons = [c.reason for c in candidates]
    todo = [what for key, what in _ADVICE if any(key in r for r in reasons)]
    return "; ".join(todo) if todo else "add a capable [models.*] profile"


def rederive_route(state: RouterState, event: TaskRouted) -> str | None:
    """Recompute a recorded decision from the state just before it; None when it matches."""
    task = state.pending.get(event.task_id)
    if task is None:
        return f"seq {event.seq}: task {event.task_id!r} was routed before its task_submitted"
    try:
        again = choose_route(state, task)
    except NoRouteAvailable as exc:
        return f"seq {event.seq}: recorded {event.model!r} but re-derivation found no route ({exc})"
    except Exception as exc:  # QueueFull and friends: the recorded decision could not happen
        return f"seq {event.seq}: recorded {event.model!r} but re-derivation raised {exc}"
    where = f"seq {event.seq}: task {event.task_id!r}"
    if again.model != event.model:
        return f"{where} recorded {event.model!r}, re-derived {again.model!r}"
    want = [(c.model, c.eligible, c.score) for c in event.candidates]
    got = [(c.model, c.eligible, c.score) for c in again.candidates]
    if want != got:
        return f"{where} scores differ: recorded {want}, re-derived {got}"
    return None
