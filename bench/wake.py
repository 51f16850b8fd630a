"""Wake-up latency: append in one process, a subscriber (``FileLog.subscribe``, woken by watchfiles)
in another; the time from just before ``append`` to the subscriber holding the decoded event.

    python bench/wake.py [--events N] [--json]

Appends use ``sync="none"`` so the figure is the notification path, not the disk. The baseline in
the same run is the floor of waking another process at all: the same timestamps sent down a pipe
to a process blocked reading it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from swarmlog.events import Note
from swarmlog.log import FileLog

CTX = mp.get_context("spawn")  # a fresh interpreter, as a real subscriber process would be


def _subscriber(folder: str, count: int, ready: object, out: object) -> None:
    log = FileLog(folder)
    stop = threading.Event()
    latencies = []
    ready.set()  # type: ignore[attr-defined]
    for event in log.subscribe(after=0, stop=stop):
        # CLOCK_MONOTONIC is one clock for every process on the host.
        latencies.append(time.monotonic() - float(event.text))  # type: ignore[union-attr]
        if event.seq >= count:
            break
    out.put(latencies)  # type: ignore[attr-defined]


def _pipe_reader(conn: object, count: int, out: object) -> None:
    latencies = []
    for _ in range(count):
        sent = conn.recv()  # type: ignore[attr-defined]
        latencies.append(time.monotonic() - sent)
    out.put(latencies)  # type: ignore[attr-defined]


def measure_pipe(count: int, gap_s: tuple[float, float]) -> list[float]:
    reader, writer = CTX.Pipe(duplex=False)
    out = CTX.Queue()
    proc = CTX.Process(target=_pipe_reader, args=(reader, count, out))
    proc.start()
    rng = random.Random(1)
    time.sleep(0.3)
    for _ in range(count):
        time.sleep(rng.uniform(*gap_s))
        writer.send(time.monotonic())
    latencies: list[float] = out.get(timeout=60)
    proc.join(10)
    return latencies[1:]


def measure(folder: Path, count: int, gap_s: tuple[float, float]) -> list[float]:
    shutil.rmtree(folder, ignore_errors=True)
    log = FileLog(folder, sync="none")
    ready, out = CTX.Event(), CTX.Queue()
    proc = CTX.Process(target=_subscriber, args=(str(folder), count, ready, out))
    proc.start()
    ready.wait(30)
    time.sleep(0.3)  # the watcher starts inside subscribe, right after `ready`
    rng = random.Random(1)
    for _ in range(count):
        time.sleep(rng.uniform(*gap_s))
        log.append([Note(text=repr(time.monotonic()), actor="bench")])
    latencies: list[float] = out.get(timeout=60)
    proc.join(10)
    return latencies[1:]  # the first may predate the watcher


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--gap-ms", type=float, nargs=2, default=(5, 30), help="random gap range")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="swarmlog-bench-"))
    try:
        gap = (args.gap_ms[0] / 1000, args.gap_ms[1] / 1000)
        lat = measure(base / "events", args.events, gap)
        floor = measure_pipe(args.events, gap)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    result = {
        "p50_ms": round(pct(lat, 0.50), 2),
        "p99_ms": round(pct(lat, 0.99), 2),
        "p90_ms": round(pct(lat, 0.90), 2),
        "max_ms": round(max(lat) * 1000, 2),
        "mean_ms": round(statistics.fmean(lat) * 1000, 2),
        "pipe_p50_ms": round(pct(floor, 0.50), 3),
        "pipe_p99_ms": round(pct(floor, 0.99), 3),
        "events": len(lat),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"{len(lat)} appends, one at a time, {args.gap_ms[0]:g}-{args.gap_ms[1]:g} ms apart; "
        "subscriber in another process"
    )
    print(f"{'case':<34} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}  (ms)")
    print(
        f"{'FileLog.subscribe (watchfiles)':<34} {result['p50_ms']:>8} {result['p90_ms']:>8} "
        f"{result['p99_ms']:>8} {result['max_ms']:>8}"
    )
    print(
        f"{'baseline: blocked pipe read':<34} {pct(floor, 0.5):>8.3f} {pct(floor, 0.9):>8.3f} "
        f"{pct(floor, 0.99):>8.3f} {max(floor) * 1000:>8.3f}"
    )
    print(f"p50_ms={result['p50_ms']} (target <= 5), p99_ms={result['p99_ms']} (target <= 20)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
