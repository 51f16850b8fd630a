"""Durable append throughput: 1 and 8 writer processes under each sync policy, against a plain
single-process loop doing ``write`` + ``fsync`` per event, all measured in this one run.

    python bench/append.py [--seconds S] [--json]

``group_commit_speedup``: 8 processes, each appending one event at a time and waiting for it to be
durable (``sync="always"``), in events/s, divided by the plain loop's events/s. On a shared machine
the disk's fsync time swings by 10x within seconds, so the two are measured back to back in
``--pairs`` alternating pairs and the median of the per-pair ratios is reported.
``batch100_durable_eps``: one process appending batches of 100 under ``sync="always"``.
``events_per_sync``, ``sync_ms_under_8_writers``: in the paired 8-writer runs, events appended per
``fdatasync`` call and the mean wall time of one call (every writer's calls are timed).
``speedup_ceiling``: what 8 writers could reach if every sync covered all 8 of them and syncs ran
back to back: ``8 / sync time`` over the plain loop's median events/s. Where ``fdatasync`` is fast
next to the CPU a writer spends per append, this ceiling, not the sharing, bounds the speedup.
``cpu_us_per_event_8_writers``: user + system CPU the 8 writer processes used per event (their own
rusage: appends, lock and futex waits, their share of each ``fdatasync``, and the cost of being
woken); ``cpu_us_per_event_plain``: the same for the plain loop. ``cpu_ceiling``: the speedup the
8 writers could reach if every CPU of this machine did nothing but their appends at that measured
cost, ``cpus / cpu per event`` over the plain loop's events/s; below the target, the machine's
CPUs, not the disk or the sharing, stop the writers.
``bare_group_commit_speedup``: the same sharing with no log at all, measured in each pair too: 8
processes each ``write`` one framed line to an ``O_APPEND`` file and wait for a shared
``fdatasync`` exactly as the log's writers do (try the sync lock without blocking; whoever gets it
syncs for everyone; the others sleep on a futex until that sync ends) but with no seq, no record
lock, no checksum and no watermark record. It is the most this way of sharing a sync reaches on
this machine in Python; the log's own figure can only be lower.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import mmap
import multiprocessing as mp
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from swarmlog.events import Note
from swarmlog.log import FileLog, futex
from swarmlog.log.framing import frame

CTX = mp.get_context("fork")  # the writers need no fresh interpreter, only their own process


def _cpu_s(who: int) -> float:
    """User + system CPU seconds of ``resource.RUSAGE_SELF`` or ``RUSAGE_CHILDREN`` so far."""
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


PLAIN_CPU_US: list[float] = []  # per plain-loop run: CPU microseconds per event


def _plain_loop(folder: Path, seconds: float) -> float:
    """The baseline: one process, one ``write`` and one ``fsync`` per event."""
    line = frame(Note(text="plain loop event", actor="bench", seq=1, ts=1.0))
    fd = os.open(folder / "plain.ndjson", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        n = 0
        cpu = _cpu_s(resource.RUSAGE_SELF)
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            os.write(fd, line)
            os.fsync(fd)
            n += 1
        eps = n / (time.perf_counter() - start)
        PLAIN_CPU_US.append((_cpu_s(resource.RUSAGE_SELF) - cpu) / n * 1e6)
        return eps
    finally:
        os.close(fd)


def _count_syncs() -> list[float]:
    """Count this process's ``fdatasync`` calls and their wall time: [calls, seconds]."""
    tally = [0.0, 0.0]
    real = os.fdatasync

    def timed(fd: int) -> None:
        t = time.perf_counter()
        real(fd)
        tally[0] += 1
        tally[1] += time.perf_counter() - t

    os.fdatasync = timed  # this forked writer's own module state only
    return tally


def _writer(folder: str, sync: str, batch: int, go: object, stop_at: object, out: object) -> None:
    tally = _count_syncs()
    log = FileLog(folder, sync=sync)  # type: ignore[arg-type]
    events = [Note(text="bench event", actor=f"w{os.getpid()}") for _ in range(batch)]
    log.append(events[:1])  # open files, warm up
    go.wait()  # type: ignore[attr-defined]
    deadline = stop_at.value  # type: ignore[attr-defined]
    tally[:] = [0.0, 0.0]
    n = 0
    while time.perf_counter() < deadline:
        log.append(events)
        n += batch
    out.put((n, tally[0], tally[1]))  # type: ignore[attr-defined]
    log.close()


def _bare_writer(folder: str, go: object, stop_at: object, out: object) -> None:
    """One writer of the log-free baseline: write a line, then share an ``fdatasync``."""
    line = frame(Note(text="bench event", actor="bench", seq=1, ts=1.0))
    fd = os.open(os.path.join(folder, "bare.ndjson"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    lock = os.open(os.path.join(folder, "bare.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    mark_fd = os.open(os.path.join(folder, "bare.mark"), os.O_RDWR)
    shared = mmap.mmap(mark_fd, 16)
    synced = ctypes.c_uint64.from_buffer(shared, 0)  # bytes known durable
    turn = ctypes.c_uint32.from_buffer(shared, 8)  # advanced after every sync
    go.wait()  # type: ignore[attr-defined]
    deadline = stop_at.value  # type: ignore[attr-defined]
    n = 0
    while time.perf_counter() < deadline:
        os.write(fd, line)
        end = os.lseek(fd, 0, os.SEEK_CUR)
        while synced.value < end:
            seen = turn.value
            if synced.value >= end:
                break
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                futex.wait(turn, seen, 0.05)
                continue
            if synced.value < end:
                target = os.fstat(fd).st_size
                os.fdatasync(fd)
                synced.value = max(synced.value, target)
            fcntl.flock(lock, fcntl.LOCK_UN)
            turn.value = (turn.value + 1) & 0xFFFFFFFF
            futex.wake(turn)
        n += 1
    out.put(n)  # type: ignore[attr-defined]
    del synced, turn
    shared.close()


def run_bare(folder: Path, writers: int, seconds: float) -> float:
    """Return events/s of ``writers`` processes in the log-free baseline."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "bare.mark").write_bytes(bytes(16))
    go, out = CTX.Event(), CTX.Queue()
    stop_at = CTX.Value("d", 0.0)
    procs = [
        CTX.Process(target=_bare_writer, args=(str(folder), go, stop_at, out))
        for _ in range(writers)
    ]
    for p in procs:
        p.start()
    time.sleep(0.3)
    start = time.perf_counter()
    stop_at.value = start + seconds
    go.set()
    total = sum(out.get(timeout=seconds + 60) for _ in procs)
    elapsed = time.perf_counter() - start
    for p in procs:
        p.join()
    return total / elapsed


SYNC_STATS: dict[str, float] = {}  # of the last run_writers call: syncs, sync_s, events, cpu_s


def run_writers(folder: Path, writers: int, sync: str, batch: int, seconds: float) -> float:
    """Return events/s of ``writers`` processes appending ``batch`` events at a time.

    Leaves in ``SYNC_STATS`` how many ``fdatasync`` calls the writers made, their total time, and
    the CPU seconds the writer processes used (from start to exit: the timed appends, plus opening
    the log and one warm-up append each).
    """
    cpu = _cpu_s(resource.RUSAGE_CHILDREN)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    go, out = CTX.Event(), CTX.Queue()
    stop_at = CTX.Value("d", 0.0)
    procs = [
        CTX.Process(target=_writer, args=(str(folder), sync, batch, go, stop_at, out))
        for _ in range(writers)
    ]
    for p in procs:
        p.start()
    time.sleep(0.3)  # let every writer open the log
    start = time.perf_counter()
    stop_at.value = start + seconds
    go.set()
    results = [out.get(timeout=seconds + 60) for _ in procs]
    elapsed = time.perf_counter() - start
    total = sum(n for n, _, _ in results)
    for p in procs:
        p.join()  # only then does RUSAGE_CHILDREN include them
    SYNC_STATS.update(
        events=total,
        syncs=sum(c for _, c, _ in results),
        sync_s=sum(t for _, _, t in results),
        cpu_s=_cpu_s(resource.RUSAGE_CHILDREN) - cpu,
    )
    log = FileLog(folder)
    report = log.verify()
    assert report.ok and report.records == total + writers, report
    return total / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="per measurement")
    parser.add_argument("--pairs", type=int, default=5, help="plain/8-writer pairs for the ratio")
    parser.add_argument("--dir", help="folder on the disk to measure (default: a temp folder)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="swarmlog-bench-", dir=args.dir))
    try:
        plain = _plain_loop(base, args.seconds)
        rows = []
        for sync in ("always", "batch", "none"):
            for writers in (1, 8):
                eps = run_writers(base / "log", writers, sync, 1, args.seconds)
                rows.append((f"{writers} writer(s), 1 event/append", sync, eps))
        pairs = []
        bare = []  # per pair: the log-free baseline's events/s over the plain loop's
        shares = []  # per pair: events per sync, ms per sync, the ceiling on the ratio
        cpu_use = []  # per pair: writers' CPU us per event, the CPU ceiling on the ratio
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        for _ in range(args.pairs):
            plain_eps = _plain_loop(base, args.seconds / 2)
            group_eps = run_writers(base / "log", 8, "always", 1, args.seconds / 2)
            pairs.append((plain_eps, group_eps, group_eps / plain_eps))
            bare.append(run_bare(base / "bare", 8, args.seconds / 2) / plain_eps)
            sync_s = SYNC_STATS["sync_s"] / SYNC_STATS["syncs"]
            # 8 writers waiting for one event each share a sync among at most 8 events: with
            # syncs back to back, 8 events per sync time is the most they can reach.
            ceiling = 8 / sync_s / plain_eps
            shares.append((SYNC_STATS["events"] / SYNC_STATS["syncs"], sync_s * 1e3, ceiling))
            cpu_per_event = SYNC_STATS["cpu_s"] / SYNC_STATS["events"]
            cpu_use.append((cpu_per_event * 1e6, (cpus or 1) / cpu_per_event / plain_eps))
        batch100 = run_writers(base / "log", 1, "always", 100, args.seconds)
        batch100_8 = run_writers(base / "log", 8, "always", 100, args.seconds)
        rows.append(("1 writer, 100 events/append", "always", batch100))
        rows.append(("8 writers, 100 events/append", "always", batch100_8))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    speedup = statistics.median(ratio for _, _, ratio in pairs)
    result = {
        "group_commit_speedup": round(speedup, 2),
        "bare_group_commit_speedup": round(statistics.median(bare), 2),
        "events_per_sync": round(statistics.median(e for e, _, _ in shares), 2),
        "sync_ms_under_8_writers": round(statistics.median(m for _, m, _ in shares), 3),
        "speedup_ceiling": round(statistics.median(c for _, _, c in shares), 2),
        "cpu_us_per_event_8_writers": round(statistics.median(u for u, _ in cpu_use), 1),
        "cpu_us_per_event_plain": round(statistics.median(PLAIN_CPU_US[-len(pairs) :]), 1),
        "cpu_ceiling": round(statistics.median(c for _, c in cpu_use), 2),
        "pairs": [
            {
                "plain_eps": round(p),
                "group8_eps": round(g),
                "bare8_ratio": round(b, 2),
                "events_per_sync": round(e, 2),
                "sync_ms": round(m, 3),
                "ceiling": round(c, 2),
                "cpu_us_per_event": round(u, 1),
                "cpu_ceiling": round(cc, 2),
            }
            for (p, g, _), b, (e, m, c), (u, cc) in zip(pairs, bare, shares, cpu_use, strict=True)
        ],
        "batch100_durable_eps": round(batch100),
        "plain_write_fsync_eps": round(plain),
        "rows": [{"case": n, "sync": s, "eps": round(e)} for n, s, e in rows],
        "cpus": cpus,
        "python": platform.python_version(),
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{'case':<32} {'sync':<7} {'events/s':>10} {'vs plain':>9}")
    print(f"{'plain write+fsync loop':<32} {'fsync':<7} {plain:>10,.0f} {1:>8.2f}x")
    for name, sync, eps in rows:
        print(f"{name:<32} {sync:<7} {eps:>10,.0f} {eps / plain:>8.2f}x")
    print("paired runs, plain loop vs 8 writers sync=always:")
    print(
        f"  {'plain/s':>10} {'8 writers/s':>11} {'ratio':>7} "
        f"{'ev/sync':>8} {'ms/sync':>8} {'ceiling':>8} {'cpu us/ev':>9} {'cpu ceiling':>11} "
        f"{'no log':>7}"
    )
    for (p, g, ratio), b, (e, m, c), (u, cc) in zip(pairs, bare, shares, cpu_use, strict=True):
        print(
            f"  {p:>10,.0f} {g:>11,.0f} {ratio:>6.2f}x {e:>8.2f} {m:>8.3f} {c:>7.2f}x "
            f"{u:>9.1f} {cc:>10.2f}x {b:>6.2f}x"
        )
    print(
        f"medians: {result['events_per_sync']} events per fdatasync, "
        f"{result['sync_ms_under_8_writers']} ms per fdatasync; ceiling (every sync shared by "
        f"all 8): {result['speedup_ceiling']}x"
    )
    print(
        f"CPU per event: {result['cpu_us_per_event_8_writers']} us in the 8 writers, "
        f"{result['cpu_us_per_event_plain']} us in the plain loop; with all {cpus} CPUs busy "
        f"at that cost the 8 writers reach at most {result['cpu_ceiling']}x (cpu_ceiling)"
    )
    print(
        f"the same sharing with no log (8 processes, O_APPEND write + shared fdatasync): "
        f"{result['bare_group_commit_speedup']}x (bare_group_commit_speedup, median of pairs)"
    )
    print(
        f"group_commit_speedup={result['group_commit_speedup']} (median of pairs, target >= 5), "
        f"batch100_durable_eps={result['batch100_durable_eps']} (target >= 100000)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
