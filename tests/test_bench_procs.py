"""bench/_procs.py: the process sampler bench/scale.py and bench/overhead.py share."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from swarmlog.events import AgentRegistered, Note
from swarmlog.log import FileLog

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def sleepers():
    procs = [
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) for _ in range(2)
    ]
    yield procs
    for p in procs:
        p.kill()
        p.wait()


def _wait_for(cond, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_registered_agents_are_sampled_with_the_log_seq(tmp_path: Path, sleepers) -> None:
    procs = _load("_procs")
    log = FileLog(tmp_path / "events")
    a, b = sleepers
    log.append([AgentRegistered(agent="a", role="scout", pid=a.pid)])
    sampler = procs.ProcSampler(tmp_path / "events", procs.registered_agents(), every_s=0.02)
    sampler.start()
    try:
        _wait_for(lambda: any("a" in row for _, row in sampler.samples))
        log.append([Note(text="x"), AgentRegistered(agent="b", role="builder", pid=b.pid)])
        _wait_for(lambda: any("b" in row for _, row in sampler.samples))
        a.kill()
        a.wait()
        n = len(sampler.samples)
        _wait_for(lambda: len(sampler.samples) > n + 1)
    finally:
        sampler.stop.set()
        sampler.join()
        log.close()
    first_a = next((seq, row) for seq, row in sampler.samples if "a" in row)
    first_b = next((seq, row) for seq, row in sampler.samples if "b" in row)
    assert first_a[0] == 1 and "b" not in first_a[1]
    assert first_b[0] == 3  # the seq of the last event read with it
    cpu, rss = first_b[1]["b"]
    assert cpu >= 0.0 and 1.0 < rss < 1000.0
    # A process that has gone is skipped, the others go on being sampled.
    assert set(sampler.samples[-1][1]) == {"b"}
    peak = sampler.peak_rss()
    assert set(peak) == {"a", "b"}
    assert peak["a"] == max(row["a"][1] for _, row in sampler.samples if "a" in row)


def test_nothing_is_sampled_before_the_log_has_an_event(tmp_path: Path, sleepers) -> None:
    procs = _load("_procs")
    calls = []

    def targets(events):
        calls.append(list(events))
        return {"p": sleepers[0].pid}

    sampler = procs.ProcSampler(tmp_path / "events", targets, every_s=0.02)
    sampler.start()
    try:
        time.sleep(0.2)
        assert sampler.samples == [] and calls == []
        log = FileLog(tmp_path / "events")
        log.append([Note(text="first")])
        log.close()
        _wait_for(lambda: sum(seq == 1 for seq, _ in sampler.samples) >= 2)
    finally:
        sampler.stop.set()
        sampler.join()
    # Sampling starts with the log (its first sample may come before the event is written).
    seqs = [seq for seq, _ in sampler.samples]
    assert len(seqs) == len(calls) and seqs == sorted(seqs) and set(seqs) <= {0, 1}
    assert all("p" in row for _, row in sampler.samples)
    # targets sees each event once.
    assert [e.text for c in calls for e in c] == ["first"]


@pytest.mark.parametrize("script", ["scale", "overhead"])
def test_bench_scripts_use_the_shared_sampler(script: str) -> None:
    """Both scripts load it when imported by path (as here) and when run as scripts."""
    mod = _load(script)
    assert mod.ProcSampler.__module__ == "bench._procs"
    done = subprocess.run(
        [sys.executable, str(BENCH / f"{script}.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {script}.py")
