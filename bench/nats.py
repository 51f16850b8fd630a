"""Benchmark the event log on NATS JetStream against the file log, side by side in one run.

For each backend (the file log; JetStream on one ``nats-server``; JetStream
on a three-node cluster with a three-replica stream, all on loopback) it measures:

- ``single_eps``: appends per second, one event per append, one writer;
- ``batch_eps``: events per second appended in batches of 100;
- ``latency_p50_ms`` / ``latency_p99_ms``: append → subscriber, measured from just before
  ``append`` to the moment a ``subscribe`` loop in another thread yields the event.

The file log is measured twice: ``file`` (``sync="always"``, fdatasync before an append returns)
and ``file_nosync`` (``sync="none"``, the closest match to a single 2.9 server, which writes to its
file store without an fsync per message). ``ratios`` holds JetStream over each file figure.

The servers are started and stopped by the script (``nats-server`` must be on PATH; without it
only the file log is measured and the JetStream figures are null).

Usage: ``python bench/nats.py [--seconds S] [--samples N] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# This script shares its name with the nats package: keep its own folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from swarmlog.events import Note  # noqa: E402
from swarmlog.log import FileLog  # noqa: E402
from swarmlog.log.nats import NatsLog  # noqa: E402

BATCH = 100


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def _servers(root: Path, count: int) -> Iterator[list[str]]:
    """Run ``count`` JetStream servers on loopback (clustered when more than one)."""
    binary = shutil.which("nats-server")
    assert binary is not None
    ports = [_free_port() for _ in range(count)]
    cports = [_free_port() for _ in range(count)]
    procs = []
    try:
        for i in range(count):
            store = root / f"n{i}"
            store.mkdir(parents=True)
            conf = [
                f'server_name: "n{i}"',
                f'listen: "127.0.0.1:{ports[i]}"',
                f'jetstream {{ store_dir: "{store}" }}',
            ]
            if count > 1:
                routes = ", ".join(
                    f'"nats-route://127.0.0.1:{p}"' for j, p in enumerate(cports) if j != i
                )
                conf.append(
                    f'cluster {{ name: "bench", listen: "127.0.0.1:{cports[i]}", '
                    f"routes: [{routes}] }}"
                )
            path = root / f"n{i}.conf"
            path.write_text("\n".join(conf) + "\n")
            procs.append(
                subprocess.Popen(
                    [binary, "-c", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            )
        for port in ports:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
        yield [f"nats://127.0.0.1:{p}" for p in ports]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


def _rate(append: Callable[[], int], seconds: float) -> float:
    """Events per second of repeated ``append`` calls for about ``seconds``."""
    for _ in range(5):
        append()  # warm up: connections, caches, the active segment
    n = 0
    t0 = time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        n += append()
    return n / elapsed


def _latency(log: Any, samples: int) -> tuple[float, float]:
    """Return (p50, p99) in ms from ``append`` to a subscriber thread yielding the event."""
    sent: dict[int, float] = {}
    got: dict[int, float] = {}
    start = log.last_seq()
    stop = threading.Event()
    ready = threading.Event()

    def consume() -> None:
        ready.set()
        for ev in log.subscribe(after=start, stop=stop):
            got[ev.seq] = time.perf_counter()
            if len(got) >= samples:
                return

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    ready.wait()
    time.sleep(0.2)  # let the subscriber reach its wait
    for i in range(samples):
        t0 = time.perf_counter()
        (ev,) = log.append([Note(text=f"lat-{i}")])
        sent[ev.seq] = t0
        time.sleep(0.005)
    t.join(30)
    stop.set()
    lat = sorted((got[s] - sent[s]) * 1000 for s in sent if s in got)
    if len(lat) < samples:
        raise RuntimeError(f"subscriber saw {len(lat)} of {samples} events")
    return statistics.median(lat), lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]


def measure(log: Any, seconds: float, samples: int) -> dict[str, float]:
    """Measure one backend."""
    single = [Note(text="x" * 80)]
    batch = [Note(text="x" * 80) for _ in range(BATCH)]
    single_eps = _rate(lambda: len(log.append(single)), seconds)
    batch_eps = _rate(lambda: len(log.append(batch)), seconds)
    p50, p99 = _latency(log, samples)
    return {
        "single_eps": round(single_eps, 1),
        "batch_eps": round(batch_eps, 1),
        "latency_p50_ms": round(p50, 3),
        "latency_p99_ms": round(p99, 3),
    }


def run(seconds: float, samples: int) -> dict[str, Any]:
    """Measure every backend available here and the JetStream/file ratios."""
    result: dict[str, Any] = {
        "machine": {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "nats_server": None,
        },
        "file": None,
        "file_nosync": None,
        "nats_single": None,
        "nats_cluster": None,
        "ratios": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with FileLog(root / "file-events", sync="always") as flog:
            result["file"] = measure(flog, seconds, samples)
        with FileLog(root / "file-nosync", sync="none") as flog:
            result["file_nosync"] = measure(flog, seconds, samples)
        if shutil.which("nats-server"):
            version = subprocess.run(
                ["nats-server", "--version"], capture_output=True, text=True, check=False
            ).stdout.strip()
            result["machine"]["nats_server"] = version
            for key, count in (("nats_single", 1), ("nats_cluster", 3)):
                with _servers(root / key, count) as urls:
                    nlog = NatsLog(urls, "bench", replicas=count, timeout_s=30)
                    try:
                        result[key] = measure(nlog, seconds, samples)
                    finally:
                        nlog.close()
    for key in ("nats_single", "nats_cluster"):
        if result[key] is None:
            continue
        for base in ("file", "file_nosync"):
            result["ratios"][f"{key}/{base}"] = {
                m: round(result[key][m] / v, 3) if (v := result[base][m]) else None
                for m in result[base]
            }
    return result


def _table(result: dict[str, Any]) -> str:
    rows = [("backend", "single ev/s", "batch-100 ev/s", "→sub p50 ms", "→sub p99 ms")]
    names = {
        "file": "file (sync=always)",
        "file_nosync": "file (sync=none)",
        "nats_single": "JetStream, 1 server",
        "nats_cluster": "JetStream, 3 nodes R3",
    }
    for key, label in names.items():
        r = result[key]
        if r is None:
            rows.append((label, "-", "-", "-", "-"))
            continue
        rows.append(
            (
                label,
                f"{r['single_eps']:,.0f}",
                f"{r['batch_eps']:,.0f}",
                f"{r['latency_p50_ms']:.2f}",
                f"{r['latency_p99_ms']:.2f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    for key, ratios in result["ratios"].items():
        lines.append(
            f"{key}: single {ratios['single_eps']}x, batch {ratios['batch_eps']}x, "
            f"p50 {ratios['latency_p50_ms']}x, p99 {ratios['latency_p99_ms']}x"
        )
    m = result["machine"]
    lines.append(
        f"machine: nproc={m['nproc']}, python {m['python']}, {m['nats_server'] or 'no nats-server'}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per throughput measurement")
    parser.add_argument("--samples", type=int, default=300, help="latency samples per backend")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = run(args.seconds, args.samples)
    print(json.dumps(result) if args.json else _table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
