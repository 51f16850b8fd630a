"""Sampling a night's processes while it runs, for the bench scripts (scale.py, overhead.py).

The scripts import it as ``bench._procs`` after putting the repository root on ``sys.path``, so
it loads the same way whether they run as ``python bench/X.py`` or are imported by a test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import psutil

from swarmlog.events import AgentRegistered, Event
from swarmlog.log import FileLog

__all__ = ["MB", "ProcSampler", "registered_agents"]

MB = 1024 * 1024

# One sample: the log's last seq read, and each process's (CPU seconds, RSS MB) by name.
Sample = tuple[int, dict[str, tuple[float, float]]]


class ProcSampler(threading.Thread):
    """Every ``every_s`` seconds, once the log in ``events_dir`` exists: read its new events,
    ask ``targets(new_events)`` for the processes to sample (name -> pid), and record each one's
    CPU time (user + system) and RSS with the last seq read. A process that has gone is skipped.
    """

    def __init__(
        self,
        events_dir: Path,
        targets: Callable[[list[Event]], Mapping[str, int]],
        every_s: float,
    ) -> None:
        super().__init__(daemon=True)
        self.events_dir = events_dir
        self.targets = targets
        self.every_s = every_s
        self.samples: list[Sample] = []
        self.stop = threading.Event()

    def run(self) -> None:
        reader = None
        seen = 0
        procs: dict[int, psutil.Process] = {}
        while not self.stop.wait(self.every_s):
            if reader is None:
                if not (self.events_dir / ".lock").exists():
                    continue
                reader = FileLog(self.events_dir, create=False).reader(0)
            new: list[Event] = []
            while batch := reader.poll():
                new.extend(batch)
                seen = batch[-1].seq
            row: dict[str, tuple[float, float]] = {}
            for name, pid in self.targets(new).items():
                try:
                    ps = procs.get(pid) or procs.setdefault(pid, psutil.Process(pid))
                    cpu = ps.cpu_times()
                    row[name] = (cpu.user + cpu.system, ps.memory_info().rss / MB)
                except psutil.Error:
                    continue
            self.samples.append((seen, row))

    def peak_rss(self) -> dict[str, float]:
        """Each process's largest RSS sampled (MB)."""
        peak: dict[str, float] = {}
        for _, row in self.samples:
            for name, (_, rss) in row.items():
                peak[name] = max(peak.get(name, 0.0), rss)
        return peak


def registered_agents() -> Callable[[Iterable[Event]], dict[str, int]]:
    """A ``targets`` for ProcSampler: every agent that has appended ``agent_registered`` (its
    latest pid), read from the events it is given."""
    pids: dict[str, int] = {}

    def targets(events: Iterable[Event]) -> dict[str, int]:
        for event in events:
            if isinstance(event, AgentRegistered):
                pids[event.agent] = event.pid
        return pids

    return targets
