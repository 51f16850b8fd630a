"""The pure router: complexity, fold, decision, re-derivation, breaker, batching, limits, CLI."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlog.cli import main
from swarmlog.errors import NoRouteAvailable, QueueFull
from swarmlog.events import (
    CircuitOpened,
    ConfigLoaded,
    GpuSample,
    HardwareSampled,
    ModelCallFinished,
    ModelServerSampled,
    ResidentModel,
    TaskCompleted,
    TaskRouted,
    TaskStarted,
    TaskSubmitted,
    decode,
    encode,
)
from swarmlog.routing import breaker, choose_route, estimate, project, rederive_route
from swarmlog.routing.batching import plan_batches
from swarmlog.routing.complexity import TaskFeatures
from swarmlog.routing.limits import can_start, in_flight
from swarmlog.routing.profile import BatchLimits
from swarmlog.routing.stats import EMPTY, apply, peak_ewma

MODELS = {
    "fast": {
        "endpoint": "http://127.0.0.1:8001/v1",
        "model": "small",
        "capabilities": ["syntax", "format", "lint"],
        "parallel": 2,
        "decode_tps": 100.0,
    },
    "deep": {
        "endpoint": "http://127.0.0.1:8002/v1",
        "model": "big",
        "capabilities": ["architecture", "refactor", "security", "lint", "format", "syntax"],
        "parallel": 2,
        "decode_tps": 20.0,
    },
}


class Log:
    """Builds events with dense seqs and event times."""

    def __init__(self, models=MODELS, **limits):
        self.events = []
        self.add(ConfigLoaded(config={"models": models, "limits": limits}))

    def add(self, ev, dt=0.0):
        ts = (self.events[-1].ts if self.events else 1000.0) + dt
        ev = msgspec.structs.replace(ev, seq=len(self.events) + 1, ts=ts)
        self.events.append(ev)
        return ev

    def submit(self, task_id, kind="lint", **kw):
        return self.add(TaskSubmitted(task_id=task_id, title=task_id, task_kind=kind, **kw))

    def route(self, task_id):
        decision = choose_route(project(self.events), project(self.events).pending[task_id])
        return self.add(decision)


def test_complexity_is_deterministic_and_explained():
    lint = estimate(TaskFeatures(task_id="a", task_kind="lint", prompt_tokens=100))
    assert (lint.tier, lint.capabilities) == ("fast", ("lint",))
    arch = estimate(TaskFeatures(task_id="b", task_kind="architecture", files=12))
    assert arch.tier == "deep" and any("12 files" in r for r in arch.reasons)
    big = estimate(
        TaskFeatures(
            task_id="c", task_kind="general", prompt_tokens=40000, files=30, languages=("py", "rs")
        )
    )
    assert big.tier == "deep" and big.score > 1.0
    assert estimate(TaskFeatures(task_id="x", task_kind="lint")) == lint.__class__(
        **{**msgspec.structs.asdict(lint), "prompt_tokens": 0}
    )


def test_lint_goes_fast_architecture_goes_deep_and_every_candidate_is_scored():
    log = Log()
    log.submit("t1", "lint", prompt="x" * 400)
    r1 = log.route("t1")
    assert r1.model == "fast" and r1.tier == "fast"
    assert {c.model for c in r1.candidates} == {"fast", "deep"}
    log.submit("t2", "architecture")
    r2 = log.route("t2")
    assert r2.model == "deep"
    fast = next(c for c in r2.candidates if c.model == "fast")
    assert not fast.eligible and "lacks capability architecture" in fast.reason
    assert decode(encode(r2)) == r2


def test_backlog_spills_lint_to_deep_and_interactive_takes_lowest_latency():
    log = Log()
    log.add(ConfigLoaded(config={"models": MODELS, "routing": {"tier_penalty": 1.5}}))
    for i in range(30):  # fast: 1.25 s per task on 2 slots; deep: 6 s x tier penalty 1.5
        log.submit(f"l{i}", "lint")
        log.route(f"l{i}")
    models = [e.model for e in log.events if isinstance(e, TaskRouted)]
    assert models[0] == "fast" and "deep" in models  # a long fast queue spills over
    assert models.count("fast") > models.count("deep")
    log2 = Log()
    for i in range(2):
        log2.submit(f"l{i}", "lint")
        log2.route(f"l{i}")
    log2.submit("i", "lint", interactive=True)
    r = log2.route("i")
    scores = {c.model: c.expected_s for c in r.candidates}
    assert r.model == min(scores, key=scores.get)
    assert "interactive" in r.reason


def test_restart_and_second_process_reach_same_state_and_decision():
    log = Log()
    for i in range(6):
        log.submit(f"t{i}", "lint" if i % 2 else "refactor", prompt="y" * (100 * i))
        log.route(f"t{i}")
        log.add(TaskStarted(task_id=f"t{i}", agent="w"), dt=0.5)
        if i % 3 == 0:
            log.add(
                ModelCallFinished(
                    model="fast" if i % 2 else "deep",
                    task_id=f"t{i}",
                    ttft_ms=300,
                    total_ms=4000,
                    completion_tokens=200,
                ),
                dt=2.0,
            )
            log.add(TaskCompleted(task_id=f"t{i}", agent="w"))
    wire = [decode(encode(e)) for e in log.events]
    assert project(wire) == project(log.events)
    half = len(log.events) // 2
    assert project(log.events[half:], project(log.events[:half])) == project(log.events)
    # every recorded decision re-derives from the state just before it
    state = EMPTY
    checked = 0
    for ev in log.events:
        if isinstance(ev, TaskRouted):
            assert rederive_route(state, ev) is None
            checked += 1
        state = apply(state, ev)
    assert checked == 6


def test_rederive_reports_a_tampered_decision():
    log = Log()
    log.submit("t1", "lint")
    before = project(log.events)
    routed = log.route("t1")
    forged = msgspec.structs.replace(routed, model="deep")
    assert "re-derived 'fast'" in rederive_route(before, forged)
    assert "before its task_submitted" in rederive_route(EMPTY, routed)


def test_latency_observations_use_event_time_peak_ewma():
    assert peak_ewma(None, 2.0, 0, 60) == 2.0
    assert peak_ewma(1.0, 3.0, 0, 60) == 3.0  # worse: taken at once
    slow = peak_ewma(3.0, 1.0, 1.0, 60)
    fast = peak_ewma(3.0, 1.0, 600.0, 60)
    assert 1.0 < fast < slow < 3.0
    log = Log()
    log.add(ModelCallFinished(model="fast", ttft_ms=500, total_ms=2500, completion_tokens=100))
    s = project(log.events).stats["fast"]
    assert s.ttft_s == pytest.approx(0.5) and s.tpot_s == pytest.approx(0.02)


def test_hard_filters_context_vram_unreachable_and_residency():
    models = {
        "fast": {**MODELS["fast"], "context_length": 1000, "vram_gb": 4, "gpu": 0},
        "deep": {**MODELS["deep"], "vram_gb": 100, "gpu": 0},
    }
    log = Log(models)
    log.add(HardwareSampled(gpus=(GpuSample(index=0, mem_total=80 * 10**9),)))
    log.submit("t", "lint", prompt="z" * 8000)
    with pytest.raises(NoRouteAvailable) as info:
        log.route("t")
    assert "exceed context 1000" in str(info.value) and "GPU 0 has 80.0 GB" in str(info.value)
    log = Log()
    log.add(ModelServerSampled(endpoint=MODELS["fast"]["endpoint"], reachable=False, error="down"))
    log.submit("t", "lint")
    r = log.route("t")
    assert r.model == "deep"
    assert "unreachable" in next(c.reason for c in r.candidates if c.model == "fast")
    log = Log()
    log.add(ModelServerSampled(endpoint=MODELS["deep"]["endpoint"], resident=()))
    log.add(
        ModelServerSampled(
            endpoint=MODELS["fast"]["endpoint"], resident=(ResidentModel(name="small"),)
        )
    )
    log.submit("t", "lint", interactive=True)
    r = log.route("t")
    reasons = {c.model: c.reason for c in r.candidates}
    assert "cold load" in reasons["deep"] and "cold load" not in reasons["fast"]


def test_ties_break_by_seeded_hash_not_random():
    models = {"a": {**MODELS["fast"]}, "b": {**MODELS["fast"], "endpoint": "http://x:2/v1"}}
    picks = []
    for i in range(40):
        log = Log(models)
        log.submit(f"task-{i}", "lint")
        r = log.route(f"task-{i}")
        assert "tie broken by seeded hash" in r.reason
        picks.append(r.model)
        log2 = Log(models)
        log2.submit(f"task-{i}", "lint")
        assert log2.route(f"task-{i}").model == r.model
    assert set(picks) == {"a", "b"}


def test_queue_bound_and_slot_limits():
    log = Log(queue_depth=3, max_concurrent=3)
    for i in range(3):
        log.submit(f"t{i}", "lint")
        log.route(f"t{i}")
    log.submit("t3", "lint")
    with pytest.raises(QueueFull, match="queue_depth 3"):
        log.route("t3")
    log.add(TaskStarted(task_id="t0", agent="w"))
    log.add(TaskStarted(task_id="t1", agent="w"))
    state = project(log.events)
    assert in_flight(state, "fast") + in_flight(state, "deep") == 2
    busy = "fast" if in_flight(state, "fast") == 2 else "deep"
    assert not can_start(state, busy)
    assert not can_start(state, "nope")


def test_breaker_opens_half_opens_and_closes():
    c = breaker.CLOSED
    events = []
    t = 0.0
    for i in range(5):
        t += 1
        call = ModelCallFinished(model="m", ts=t, outcome="error" if i else "ok", task_id=f"t{i}")
        c = breaker.fold_call(c, call)
        ev = breaker.decide(c, call, model="m")
        if ev is not None:
            events.append(ev)
            c = breaker.fold_opened(c, ev)
    (opened,) = events
    assert isinstance(opened, CircuitOpened) and "4 of the last 5" in opened.reason
    assert opened.retry_at == t + breaker.BACKOFF_BASE_S
    assert breaker.admits(c, t + 1) == (False, f"circuit open until t={opened.retry_at:.3f}")
    ok, why = breaker.admits(c, opened.retry_at)
    assert ok and "probe" in why
    c = breaker.fold_routed(c, "probe-1", opened.retry_at)
    assert not breaker.admits(c, opened.retry_at)[0]  # one probe at a time
    fail = ModelCallFinished(
        model="m", ts=opened.retry_at + 1, outcome="timeout", task_id="probe-1"
    )
    c = breaker.fold_call(c, fail)
    again = breaker.decide(c, fail, model="m")
    assert again.retry_at - fail.ts == 2 * (opened.retry_at - t)  # back-off grows
    c = breaker.fold_opened(c, again)
    good = ModelCallFinished(model="m", ts=again.retry_at + 1, outcome="ok", task_id="probe-2")
    c = breaker.fold_call(c, good)
    closed = breaker.decide(c, good, model="m")
    assert closed is not None and closed.target == "m"
    assert breaker.fold_closed(c, closed) == breaker.CLOSED


def test_breaker_fatal_and_retry_after():
    c = breaker.CLOSED
    call = ModelCallFinished(model="m", ts=10.0, outcome="error", http_status=404)
    assert "HTTP 404" in breaker.decide(breaker.fold_call(c, call), call, model="m").reason
    call = ModelCallFinished(
        model="m", ts=10.0, outcome="rejected", http_status=503, retry_after_s=42
    )
    assert breaker.decide(breaker.fold_call(c, call), call, model="m").retry_at == 52.0


def test_open_circuit_filters_the_model_in_the_router():
    log = Log()
    log.add(CircuitOpened(target="fast", reason="x", retry_at=5000.0))
    log.submit("t", "lint")
    r = log.route("t")
    assert r.model == "deep"
    assert "circuit open" in next(c.reason for c in r.candidates if c.model == "fast")


def test_batching_groups_small_same_kind_tasks():
    limits = BatchLimits(max_size=3, max_wait_s=2.0, max_tokens=1000)
    ready = [
        (TaskFeatures(task_id=f"l{i}", task_kind="lint", prompt_tokens=100), 0.0) for i in range(4)
    ]
    ready.append((TaskFeatures(task_id="f0", task_kind="format", prompt_tokens=100), 0.5))
    ready.append((TaskFeatures(task_id="r0", task_kind="refactor", prompt_tokens=100), 0.5))
    plan = plan_batches(ready, model="fast", limits=limits, now=1.0)
    (full,) = plan.batches
    assert full.task_ids == ("l0", "l1", "l2") and "full" in full.reason
    assert plan.singles == ("r0",)
    assert set(plan.waiting) == {"l3", "f0"}
    later = plan_batches(ready, model="fast", limits=limits, now=3.0)
    assert set(later.singles) == {"r0", "l3", "f0"}
    assert later.batches[0].batch_id == full.batch_id  # deterministic id
    tokens = [
        (TaskFeatures(task_id=f"t{i}", task_kind="lint", prompt_tokens=400), 0.0) for i in range(3)
    ]
    capped = plan_batches(tokens, model="fast", limits=limits, now=5.0)
    assert [b.task_ids for b in capped.batches] == [("t0", "t1")]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["lint", "format", "refactor", "architecture"]), max_size=12))
def test_any_split_of_the_log_folds_to_the_same_state(kinds):
    log = Log()
    for i, kind in enumerate(kinds):
        log.submit(f"t{i}", kind)
        log.route(f"t{i}")
        if i % 2:
            log.add(TaskCompleted(task_id=f"t{i}", agent="w"), dt=1.0)
    whole = project(log.events)
    for cut in range(0, len(log.events) + 1, 3):
        assert project(log.events[cut:], project(log.events[:cut])) == whole


def test_route_command_defaults_and_json(tmp_path, capsys):
    prompt = tmp_path / "diff.txt"
    prompt.write_text("def f():\n  return 1\n" * 50)
    args = ["route", "--dir", str(tmp_path), "--task-kind", "lint", "--prompt-file", str(prompt)]
    assert main([*args, "--files", "a.py,b.py", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "-> fast" in out and "deep" in out and "lacks capability lint" in out
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["decision"]["model"] == "fast" and data["default_models"] is True
    assert main(["route", "--dir", str(tmp_path), "--task-kind", "architecture"]) == 0
    assert "-> deep" in capsys.readouterr().out
    assert main(["route", "--dir", str(tmp_path), "--prompt-file", str(tmp_path / "no")]) == 2


def test_replay_verify_rederives_task_routed():
    from swarmlog import replay

    assert "swarmlog.routing.verify" in replay.load_check_modules()
    log = Log()
    for i in range(4):
        log.submit(f"t{i}", "lint" if i % 2 else "architecture")
        log.route(f"t{i}")
    assert replay.verify(log.events) == []
    forged = msgspec.structs.replace(log.events[-1], model="deep" if i % 2 else "fast")
    (problem,) = replay.verify([*log.events[:-1], forged])
    assert problem.seq == forged.seq and "re-derived" in problem.what


def test_replay_verify_skips_routing_without_any_config():
    from swarmlog import replay
    from swarmlog.routing.verify import check_task_routed

    replay.load_check_modules()
    routed = TaskRouted(seq=2, task_id="t", model="x")
    assert check_task_routed(EMPTY, routed) is None


def test_a_gpu_too_small_for_both_models_keeps_work_on_the_model_whose_turn_it_is():
    from swarmlog.routing.decide import is_resident

    models = {
        "fast": {**MODELS["fast"], "vram_gb": 14, "gpu": 0, "load_s": 8.0},
        "deep": {**MODELS["deep"], "vram_gb": 30, "gpu": 0, "load_s": 16.0},
    }
    log = Log(models)
    log.add(HardwareSampled(gpus=(GpuSample(index=0, mem_total=40 * 10**9),)))
    fast_ep, deep_ep = MODELS["fast"]["endpoint"], MODELS["deep"]["endpoint"]
    log.add(ModelServerSampled(endpoint=fast_ep, resident=(ResidentModel(name="small"),)))
    log.add(ModelServerSampled(endpoint=deep_ep, resident=(ResidentModel(name="small"),)))
    log.submit("l1", "lint")
    assert log.route("l1").model == "fast"
    log.submit("r1", "refactor")
    r1 = log.route("r1")
    assert r1.model == "deep" and "evicts fast" in r1.reason
    # Ollama serves the GPU in arrival order: fast is evicted for r1 before a new lint could run
    # there, so a lint now joins deep's turn instead of forcing a second swap.
    state = project(log.events)
    profiles = {p.name: p for p in state.config.profiles}
    assert not is_resident(state, profiles["fast"]) and is_resident(state, profiles["deep"])
    log.submit("l2", "lint")
    l2 = log.route("l2")
    reasons = {c.model: c.reason for c in l2.candidates}
    assert l2.model == "deep" and "cold load" in reasons["fast"]
    assert "cold load" not in reasons["deep"]
    for ev in log.events:
        if isinstance(ev, TaskRouted):
            assert rederive_route(project(log.events[: ev.seq - 1]), ev) is None


def test_router_config_derives_its_per_profile_constants():
    state = project(Log().events)
    cfg = state.config
    assert [p.name for p in cfg.prepared] == [p.name for p in cfg.profiles]
    fast = next(p for p in cfg.prepared if p.name == "fast")
    assert fast.tier == "fast" and fast.tpot_s == 1 / 100.0 and fast.slots == 2
    again = msgspec.structs.replace(cfg, profiles=cfg.profiles[:1])
    assert [p.name for p in again.prepared] == [cfg.profiles[0].name]


def test_vram_the_server_reported_is_folded_in_when_the_config_sets_none():
    gib = 10**9  # GB, as the router reads GPU memory
    models = {
        "fast": {**MODELS["fast"], "gpu": 0},
        "deep": {**MODELS["deep"], "gpu": 0, "vram_gb": 20.0},
    }
    log = Log(models=models)
    log.add(HardwareSampled(gpus=(GpuSample(index=0, mem_total=24 * gib, mem_free=24 * gib),)))
    fast_ep = MODELS["fast"]["endpoint"]
    assert project(log.events).config.profile("fast").vram_gb is None
    # Ollama's /api/ps: the small model is resident, 6 GB in all (part of it spilled to the CPU)
    log.add(
        ModelServerSampled(
            endpoint=fast_ep,
            resident=(ResidentModel(name="small", size=6_000_000_000, size_vram=4_000_000_000),),
        )
    )
    state = project(log.events)
    fast = state.config.profile("fast")
    assert fast.vram_gb == 6.0 and fast.vram_from_server
    assert state.config.profile("deep").vram_gb == 20.0  # a configured size wins
    # the reported size now counts: 6 + 20 GB do not fit beside each other on 24 GiB
    rivals = {p.name for p in next(p for p in state.config.prepared if p.name == "deep").rivals}
    assert rivals == {"fast"}
    # a later sample without the model keeps its size; a new config_loaded keeps it too
    log.add(ModelServerSampled(endpoint=fast_ep, resident=()))
    log.add(ConfigLoaded(config={"models": models}))
    assert project(log.events).config.profile("fast").vram_gb == 6.0
    # too large for any GPU once the server says so: filtered with the reason
    log.add(
        ModelServerSampled(
            endpoint=fast_ep, resident=(ResidentModel(name="small", size=30_000_000_000),)
        )
    )
    log.add(ModelServerSampled(endpoint=fast_ep, resident=()))
    log.submit("t", "lint")
    decision = log.route("t")
    fast_score = next(c for c in decision.candidates if c.model == "fast")
    assert not fast_score.eligible and "needs 30 GB VRAM" in fast_score.reason
    assert decision.model == "deep"
    from swarmlog import replay

    replay.load_check_modules()
    assert replay.verify(log.events) == []


def test_hw_and_the_router_agree_on_what_fits_a_gpu() -> None:
    """GB is 1e9 bytes in ``vram_gb``, in servers' sizes and in ``swarmlog hw``; the router read
    GPU memory in GiB, so an 82 GB model that ``hw`` placed on an H100 (85.5 GB) was refused by
    ``route`` as larger than the GPU ('GPU 0 has 79.6 GB')."""
    from swarmlog.hardware import Probe, place
    from swarmlog.routing.profile import Profile
    from tests.fake_nvml import make_fake_nvml

    gpus = Probe(nvml=make_fake_nvml()).sample().gpus
    (placed,) = place([Profile(name="deep", vram_gb=82, gpu=0)], gpus)
    assert placed.fits
    log = Log({"deep": {**MODELS["deep"], "vram_gb": 82, "gpu": 0}})
    log.add(HardwareSampled(gpus=gpus))
    log.submit("t", "refactor")
    assert log.route("t").model == "deep"
    # And both refuse what does not fit.
    (too_big,) = place([Profile(name="deep", vram_gb=90, gpu=0)], gpus)
    assert not too_big.fits
    log = Log({"deep": {**MODELS["deep"], "vram_gb": 90, "gpu": 0}})
    log.add(HardwareSampled(gpus=gpus))
    log.submit("t", "refactor")
    with pytest.raises(NoRouteAvailable, match=r"GPU 0 has 85\.5 GB"):
        log.route("t")
