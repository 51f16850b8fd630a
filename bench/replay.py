"""Benchmark the projections: fold rate, start-up from a snapshot, and re-rendering team-state.md.

Generates a synthetic night (a seeded mix of heartbeats, model calls, hardware and server samples,
task lifecycles, messages, trust changes, reviews, decisions, checkpoints and alerts), writes it
to a file log in a temporary folder, then measures, in the same run:

- ``fold_eps``: events per second folding every projection over the whole log (in memory);
- ``snapshot_start_ms``: loading the newest snapshot (taken ``--tail`` events before the end) and
  folding the tail read from the file log, against folding the file log from zero;
- ``render_ms_median``: re-rendering ``team-state.md`` after one new event.

Usage: ``python bench/replay.py [--events N] [--tail N] [--json]``
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from swarmlog.events import (
    AgentRegistered,
    AgentStatusChanged,
    AlertRaised,
    CandidateScore,
    CheckpointWritten,
    ConfigLoaded,
    DecisionMade,
    DetectorFired,
    EscalationRaised,
    EscalationResolved,
    EventBase,
    GpuSample,
    HardwareSampled,
    Heartbeat,
    HumanCommand,
    MessageSent,
    ModelCallFinished,
    ModelServerSampled,
    PhaseCompleted,
    PhaseEntered,
    PositionTaken,
    ReviewOpened,
    RoundClosed,
    RunStarted,
    TaskClaimed,
    TaskCompleted,
    TaskFailed,
    TaskRouted,
    TaskStarted,
    TaskSubmitted,
    TaskTimedOut,
    TrustChanged,
)
from swarmlog.log import FileLog
from swarmlog.render import make_environment, render_team_state
from swarmlog.snapshot import anchor_at, load_state, write_snapshot
from swarmlog.state import EMPTY, apply, project

AGENTS = ("architect", "scout", "builder", "builder-2", "refactorer", "inspector", "scribe")
MODELS = ("qwen3:32b", "qwen3:8b", "qwen2.5-coder:7b")
KINDS = ("lint", "refactor", "research", "typecheck", "architecture", "format")
PHASES = ("planning", "execution", "review", "iteration")


def synthetic_night(n: int, *, seed: int = 7, t0: float = 1_790_000_000.0) -> Iterator[EventBase]:
    """Yield ``n`` events shaped like a busy night of a seven-agent team (no seqs)."""
    rng = random.Random(seed)
    ts = t0
    count = 0
    run = "night-1"

    def ev(e: EventBase) -> EventBase:
        nonlocal count
        count += 1
        return e

    yield ev(RunStarted(ts=ts, run=run, actor="scheduler", goal="refactor the auth module"))
    # Slots for every model, so claims are held as in a real night (unconfigured: 1 slot each).
    models = {m: {"model": m, "api": "ollama", "parallel": 6} for m in MODELS}
    yield ev(ConfigLoaded(ts=ts, run=run, actor="scheduler", config={"models": models}))
    yield ev(AgentRegistered(ts=ts, run=run, agent="director", role="director", model="claude"))
    for a in AGENTS:
        yield ev(AgentRegistered(ts=ts, run=run, agent=a, role=a.split("-")[0], model=MODELS[0]))
    free = list(AGENTS)
    active: dict[str, dict[str, object]] = {}
    next_task = 0
    phase_i = 0
    while count < n:
        ts += rng.expovariate(1 / 0.03)
        r = rng.random()
        if free and len(active) < 6 and r < 0.05:
            agent = free.pop(rng.randrange(len(free)))
            next_task += 1
            tid = f"T{next_task:06d}"
            model = rng.choice(MODELS)
            yield ev(
                TaskSubmitted(
                    ts=ts,
                    run=run,
                    actor="director",
                    task_id=tid,
                    title=f"{rng.choice(KINDS)} module {next_task % 97}",
                    task_kind=rng.choice(KINDS),
                    role=agent.split("-")[0],
                )
            )
            cands = tuple(
                CandidateScore(model=m, score=rng.random(), expected_s=rng.random() * 60)
                for m in MODELS
            )
            yield ev(
                TaskRouted(
                    ts=ts, run=run, actor="scheduler", task_id=tid, model=model, candidates=cands
                )
            )
            yield ev(
                TaskClaimed(
                    ts=ts, run=run, actor=agent, task_id=tid, agent=agent, lease_until=ts + 60
                )
            )
            yield ev(
                TaskStarted(ts=ts, run=run, actor=agent, task_id=tid, agent=agent, model=model)
            )
            active[tid] = {"agent": agent, "model": model, "left": rng.randint(2, 12)}
        elif active and r < 0.45:
            tid = rng.choice(sorted(active))
            info = active[tid]
            agent, model = str(info["agent"]), str(info["model"])
            if rng.random() < 0.55:
                yield ev(
                    Heartbeat(
                        ts=ts, run=run, actor=agent, agent=agent, task_id=tid, lease_until=ts + 60
                    )
                )
            else:
                ms = rng.lognormvariate(8, 0.6)
                yield ev(
                    ModelCallFinished(
                        ts=ts,
                        run=run,
                        actor=agent,
                        model=model,
                        task_id=tid,
                        agent=agent,
                        total_ms=ms,
                        ttft_ms=ms / 10,
                        prompt_tokens=rng.randint(200, 4000),
                        completion_tokens=rng.randint(50, 800),
                        outcome="ok" if rng.random() < 0.95 else "timeout",
                    )
                )
                info["left"] = int(str(info["left"])) - 1
                if int(str(info["left"])) <= 0:
                    del active[tid]
                    free.append(agent)
                    x = rng.random()
                    if x < 0.9:
                        yield ev(
                            TaskCompleted(
                                ts=ts,
                                run=run,
                                actor=agent,
                                task_id=tid,
                                agent=agent,
                                summary="done; tests pass",
                                tokens_in=rng.randint(500, 9000),
                                tokens_out=rng.randint(100, 2000),
                            )
                        )
                    elif x < 0.97:
                        yield ev(
                            TaskFailed(
                                ts=ts,
                                run=run,
                                actor=agent,
                                task_id=tid,
                                agent=agent,
                                error="reply failed validation",
                            )
                        )
                    else:
                        yield ev(
                            TaskTimedOut(
                                ts=ts,
                                run=run,
                                actor="scheduler",
                                task_id=tid,
                                agent=agent,
                                lease_until=ts,
                            )
                        )
        elif r < 0.65:
            yield ev(Heartbeat(ts=ts, run=run, actor=rng.choice(AGENTS), agent=rng.choice(AGENTS)))
        elif r < 0.80:
            gpus = (
                GpuSample(
                    index=0,
                    name="H100",
                    mem_total=80 << 30,
                    mem_used=rng.randint(20, 70) << 30,
                    util_gpu=rng.randint(0, 100),
                ),
            )
            yield ev(
                HardwareSampled(
                    ts=ts,
                    run=run,
                    actor="monitor",
                    host="box",
                    gpus=gpus,
                    ram_percent=rng.random() * 100,
                )
            )
        elif r < 0.88:
            yield ev(
                ModelServerSampled(
                    ts=ts,
                    run=run,
                    actor="monitor",
                    endpoint="http://127.0.0.1:11434",
                    running=len(active),
                )
            )
        elif r < 0.975:
            a = rng.choice(AGENTS)
            yield ev(
                MessageSent(
                    ts=ts,
                    run=run,
                    actor=a,
                    msg_id=f"m{count}",
                    sender=a,
                    to="director",
                    type=rng.choice(("STATUS", "REQUEST", "RESPONSE")),
                    content=f"progress report {count}",
                )
            )
        elif r < 0.99:
            a = rng.choice(AGENTS)
            yield ev(
                AgentStatusChanged(
                    ts=ts,
                    run=run,
                    actor=a,
                    agent=a,
                    status=rng.choice(("idle", "working", "paused")),
                )
            )
        else:
            k = rng.randrange(1000)
            if k < 300:
                a = rng.choice(AGENTS)
                old = rng.randint(3, 9)
                yield ev(
                    TrustChanged(
                        ts=ts,
                        run=run,
                        actor="director",
                        agent=a,
                        old=old,
                        new=old + rng.choice((-1, 1)),
                        reason="review outcome",
                    )
                )
            elif k < 500:
                rid = f"R{count}"
                yield ev(
                    ReviewOpened(
                        ts=ts,
                        run=run,
                        actor="director",
                        review_id=rid,
                        subject="auth module",
                        participants=AGENTS[:4],
                    )
                )
                for a in AGENTS[:4]:
                    yield ev(
                        PositionTaken(
                            ts=ts,
                            run=run,
                            actor=a,
                            review_id=rid,
                            agent=a,
                            round=1,
                            stance="approve",
                        )
                    )
                yield ev(
                    RoundClosed(
                        ts=ts,
                        run=run,
                        actor="director",
                        review_id=rid,
                        round=1,
                        converged=True,
                        rule="unanimous",
                    )
                )
                yield ev(
                    DecisionMade(
                        ts=ts,
                        run=run,
                        actor="director",
                        decision_id=f"D{count}",
                        subject="merge auth refactor",
                        outcome="approve",
                        rule="unanimous",
                        review_id=rid,
                    )
                )
            elif k < 600:
                yield ev(
                    CheckpointWritten(
                        ts=ts,
                        run=run,
                        actor="scribe",
                        checkpoint_id=f"C{count}",
                        trigger="milestone",
                        summary="steady progress",
                        next_trigger="review",
                    )
                )
            elif k < 640:
                phase = PHASES[phase_i % 4]
                yield ev(
                    PhaseCompleted(
                        ts=ts, run=run, actor="scheduler", phase=phase, iteration=phase_i // 4
                    )
                )
                phase_i += 1
                yield ev(
                    PhaseEntered(
                        ts=ts,
                        run=run,
                        actor="scheduler",
                        phase=PHASES[phase_i % 4],
                        iteration=phase_i // 4,
                    )
                )
            elif k < 660:
                eid, aid = f"E{count}", f"A{count}"
                yield ev(
                    DetectorFired(
                        ts=ts,
                        run=run,
                        actor="monitor",
                        detector="stuck_agent",
                        level=2,
                        agent="scout",
                        value=700,
                        threshold=600,
                    )
                )
                yield ev(
                    EscalationRaised(
                        ts=ts,
                        run=run,
                        actor="monitor",
                        escalation_id=eid,
                        level=2,
                        rule="stuck_agent",
                        agent="scout",
                    )
                )
                yield ev(
                    AlertRaised(
                        ts=ts,
                        run=run,
                        actor="monitor",
                        alert_id=aid,
                        level=3,
                        rule="stuck_agent",
                        title="scout stuck",
                        escalation_id=eid,
                    )
                )
                yield ev(EscalationResolved(ts=ts, run=run, actor="director", escalation_id=eid))
                yield ev(HumanCommand(ts=ts, run=run, actor="human", command="ack", target=aid))
            else:
                yield ev(Heartbeat(ts=ts, run=run, actor="director", agent="director"))


def _measure(n: int, tail: int) -> dict[str, float]:
    events = list(synthetic_night(n))[:n]
    t = time.perf_counter()
    state = EMPTY
    for e in events:
        state = apply(state, e)
    fold_s = time.perf_counter() - t

    with tempfile.TemporaryDirectory(prefix="swarmlog-bench-") as tmp:
        root = Path(tmp)
        log = FileLog(root / "memory" / "events", sync="none")  # default 64 MiB segments
        for i in range(0, len(events), 20_000):
            log.append(events[i : i + 20_000])
        # The snapshot is taken `tail` events before the end, then start-up folds the tail.
        head = project(_read(log, until=n - tail))
        anchor = anchor_at(log, head.seq)  # start-up checks the snapshot belongs to this log
        write_snapshot(root / "memory" / "snapshots", head, anchor=anchor, log=log)

        t = time.perf_counter()
        from_zero = project(log.read(after=0))
        zero_ms = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        loaded, reasons = load_state(log, root / "memory" / "snapshots")
        snap_ms = (time.perf_counter() - t) * 1000
        if reasons or loaded != from_zero:
            raise SystemExit("snapshot start-up and fold from zero disagree")
        log.close()

    env = make_environment(None)
    times = []
    s = from_zero
    for i in range(200):
        e = Heartbeat(seq=s.seq + 1, ts=s.ts + 1, agent="builder", task_id="", run="night-1")
        if i % 2:
            e = AgentStatusChanged(
                seq=s.seq + 1, ts=s.ts + 1, agent="scout", status="working", detail=f"step {i}"
            )  # type: ignore[assignment]
        t = time.perf_counter()
        s = apply(s, e)
        render_team_state(s, env)
        times.append((time.perf_counter() - t) * 1000)
    return {
        "events": float(n),
        "tasks": float(len(from_zero.board.tasks)),
        "fold_s": fold_s,
        "fold_eps": n / fold_s,
        "zero_start_ms": zero_ms,
        "snapshot_start_ms": snap_ms,
        "snapshot_speedup": zero_ms / snap_ms,
        "render_ms_median": statistics.median(times),
    }


def _read(log: FileLog, until: int) -> Iterator[EventBase]:
    for e in log.read(after=0):
        if e.seq > until:
            return
        yield e


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--tail", type=int, default=1_000)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    r = _measure(args.events, args.tail)
    if args.json:
        keys = ("fold_eps", "snapshot_start_ms", "snapshot_speedup", "render_ms_median")
        print(json.dumps({k: round(r[k], 3) for k in keys}))
        return 0
    print(f"python {platform.python_version()}, {r['events']:.0f} events, {r['tasks']:.0f} tasks")
    rows = [
        ("fold all projections", f"{r['fold_eps']:,.0f} events/s", ">= 300,000"),
        ("start from zero (file log)", f"{r['zero_start_ms']:,.1f} ms", "baseline"),
        ("start from snapshot + tail", f"{r['snapshot_start_ms']:,.1f} ms", "<= 100"),
        ("snapshot speed-up", f"{r['snapshot_speedup']:,.1f}x", ">= 20x"),
        ("re-render team-state.md", f"{r['render_ms_median']:.3f} ms median", "<= 5"),
    ]
    for name, value, target in rows:
        print(f"{name:<30} {value:>24}   target {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
