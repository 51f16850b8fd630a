"""bench/schedule.py: its lower bounds are bounds (exhaustively checked), no policy beats them."""

from __future__ import annotations

import importlib.util
import itertools
import json
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "schedule.py"


@pytest.fixture(scope="module")
def sched() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_schedule", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_schedule"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def fixture(sched):
    return json.loads(sched.FIXTURE.read_text())


def _instance(sched, seed, layout):
    """Six deep-only and eight flexible tasks, arriving within 1 to 200 s."""
    rng = random.Random(seed)
    template = sched.workloads(0, 24)[2 if layout == "one_gpu" else 0]
    span = rng.choice([1.0, 20.0, 60.0, 200.0])
    kinds = ["lint" if rng.random() < 0.6 else "format" for _ in range(8)] + ["refactor"] * 6
    tasks = [sched._task(rng, i, rng.uniform(0, span), k) for i, k in enumerate(kinds)]
    return sched.Workload(f"{layout}-{seed}", template.specs, template.gpus_gb, tasks)


def _fixed(pick):
    """A policy that routes by a fixed table (the other tasks have one eligible model)."""
    return lambda r, names, cluster, memo: pick.get(r.task, names[0])


@pytest.mark.parametrize("layout", ["one_gpu", "two_gpus"])
def test_no_routing_of_small_instances_beats_the_lower_bound(sched, fixture, layout):
    binding = set()
    for seed in range(12):
        w = _instance(sched, seed, layout)
        parts = sched.bounds(w, fixture)
        bound = sched.lower_bound(w, fixture)
        binding.add(max((v, k) for k, v in parts.items() if k != "relaxed")[1])
        cluster = sched.Cluster(w.specs, w.gpus_gb, fixture)
        flexible = [r.task for r in w.tasks if len(sched._eligible(cluster, r.kind)) == 2]
        best = min(
            sched.simulate(w, _fixed(dict(zip(flexible, lab, strict=True))), fixture)[0]
            for lab in itertools.product(("fast", "deep"), repeat=len(flexible))
        )
        # every one of the 2**8 routings, the best one included, respects the bound
        assert best >= bound * (1 - 1e-9), (w.name, best, parts)
    # the instances exercise the structural bounds, not only the longest chain
    assert binding & ({"swaps"} if layout == "one_gpu" else {"work", "release"})


def test_the_router_and_every_baseline_respect_the_bound_and_it_is_tight(sched, fixture):
    policies = [sched.swarmlog_router, sched.round_robin, sched.least_busy]
    policies.append(sched.lowest_mean_latency)
    for w in sched.workloads(3, 120):
        bound = sched.lower_bound(w, fixture)
        spans = [sched.simulate(w, p, fixture)[0] for p in policies]
        assert min(spans) >= bound * (1 - 1e-9), (w.name, spans, bound)
        assert spans[0] <= 1.15 * bound, (w.name, spans[0], bound)
        assert spans[0] <= min(spans) * 1.05, (w.name, spans)


def test_swaps_bound_is_the_exact_minimum_over_labellings(sched):
    rng = random.Random(5)
    for _ in range(30):
        n = rng.randint(1, 7)
        costs = [
            [rng.choice([rng.uniform(0.1, 5), float("inf")]), rng.uniform(0.1, 9)] for _ in range(n)
        ]
        loads = [rng.uniform(0, 4), rng.uniform(0, 4)]
        start = rng.choice([None, 0, 1])
        brute = float("inf")
        for lab in itertools.product((0, 1), repeat=n):
            total = 0.0 if start == lab[0] else loads[lab[0]]
            total += sum(loads[b] for a, b in itertools.pairwise(lab) if a != b)
            brute = min(brute, total + sum(costs[i][j] for i, j in enumerate(lab)))
        assert sched._swaps_bound(costs, loads, start) == pytest.approx(brute)


def test_json_has_the_named_keys(sched, capsys):
    assert sched.main(["--json", "--tasks", "48", "--spread", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"workloads", "decision_us_median", "seed_mix_spread"}
    assert out["decision_us_median"] > 0
    spread = out["seed_mix_spread"]
    assert spread["seeds"] == "1..3"
    for key in ("vs_round_robin", "bound_vs_round_robin", "makespan_over_bound"):
        assert spread[key]["min"] <= spread[key]["median"] <= spread[key]["max"]
    assert spread["vs_round_robin"]["min"] >= spread["bound_vs_round_robin"]["min"]
    assert spread["makespan_over_bound"]["min"] >= 1.0
    assert set(out["workloads"]) == {"seed_mix", "bursty_interactive", "small_gpu"}
    for d in out["workloads"].values():
        assert {"makespan_over_bound", "vs_round_robin", "p95_latency_s"} <= set(d)
        assert d["makespan_over_bound"] >= 1.0
        assert d["vs_round_robin"] >= d["bound_vs_round_robin"]
