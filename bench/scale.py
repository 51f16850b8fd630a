"""What grows with the size of a night: per-event work, memory, prompts, renders, files.

    python bench/scale.py [--tasks 190] [--iterations 2] [--time-scale 0.1] [--filler 1500] [--json]

Runs one real night (supervisor, scheduler, seven agent processes, monitor, renderer, simulated
Ollama servers on loopback) on a scripted scenario whose plan has ``--tasks`` work items (the
demo's mix of kinds, each depending on the item seven before it), so the board ends with that
many tasks and more (a plan reply holds at most 200 items). The config asks for reply tokens
enough for such a plan (``max_tokens``). ``--filler`` appends copies of the
monitor's samples and alive-only heartbeats at N events/s, the readings of a night's hours
compressed into the minute this one takes. While it runs, every child process's CPU time and
RSS are sampled with the log's length. Then, from the log:

- ``cpu_us_per_event``: each child's CPU time per event appended, in the first and the last
  quarter of the night's events (a process doing O(events so far) or O(tasks so far) work per
  event shows a late figure well above the early one);
- ``rss_mb``: each child's RSS early (at a quarter of the events) and at the end;
- ``board_fold_us`` / ``state_fold_us``: folding one event into the dispatch board
  (``runtime.board``) and into ``SwarmState``, early and late;
- ``step_scan_us``: one scheduler decision's scans of the board at the end of the night
  (``next_steps``, ``ready_to_route``, ``claimable`` for every role) against a quarter in;
- ``render_ms``: ``render_team_state`` and ``render_all`` at a quarter of the events and at the
  end, with the size of each output;
- ``prompt_tokens``: the prompt size of each task kind's first and last call, and the largest;
- ``files``: count and bytes of everything under ``memory/`` and ``alerts/`` by folder.

There is no baseline to beat: the figures to read are each late/early ratio, which stays near 1
for work that does not grow with the night.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec

# The repository root, for bench._procs (this folder is on the path when run as a script).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._procs import ProcSampler
from swarmlog import routing
from swarmlog.cli.initcmd import init_workspace
from swarmlog.escalation import levels, pipeline
from swarmlog.events import (
    Event,
    EventBase,
    HardwareSampled,
    Heartbeat,
    ModelCallFinished,
    ModelServerSampled,
    TaskSubmitted,
)
from swarmlog.log import FileLog
from swarmlog.render import make_environment, render_all, render_team_state
from swarmlog.runtime.board import EMPTY_BOARD, apply_board, claimable, ready_to_route
from swarmlog.runtime.context import EMPTY_CONTEXT, apply_context
from swarmlog.runtime.flow import FlowView, next_steps
from swarmlog.runtime.supervisor import ROLES, Supervisor
from swarmlog.sim.scenarios import SCENARIOS, Scenario
from swarmlog.sim.scenarios.launch import start_fleet
from swarmlog.state import EMPTY, apply
from swarmlog.team import reviews as team_reviews
from swarmlog.team import trust as team_trust
from swarmlog.workspace import Workspace

__all__ = ["main", "scale_scenario"]

_KINDS: tuple[tuple[str, str, list[str]], ...] = (
    ("implement", "builder", ["python"]),
    ("research", "scout", []),
    ("lint", "builder", ["python"]),
    ("refactor", "refactorer", ["python"]),
    ("format", "builder", ["python"]),
    ("research", "architect", []),
    ("typecheck", "inspector", ["python"]),
)


def scale_scenario(tasks: int, iterations: int) -> Scenario:
    """The demo night with a plan of ``tasks`` work items."""
    demo = SCENARIOS["demo"]
    plan = []
    for i in range(tasks):
        kind, role, langs = _KINDS[i % len(_KINDS)]
        item: dict[str, Any] = {
            "id": f"item{i:05d}",
            "title": f"{kind.capitalize()} part {i}",
            "kind": kind,
            "role": role,
            "prompt": f"Work item {i}: {kind} the module part{i}.",
            "files": [f"src/part{i}.py"] if langs else [],
            "lines": 60 + i % 200,
            "languages": langs,
        }
        if i >= 7:
            item["deps"] = [f"item{i - 7:05d}"]
        plan.append(item)
    return msgspec.structs.replace(
        demo, name="scale", plan=tuple(plan), invalid_first={}, max_iterations=iterations
    )


# The night


class _Filler(threading.Thread):
    """Append copies of the monitor's samples at ``rate`` events per second: the hours of
    hardware and server readings (and alive-only heartbeats) of a real night, compressed."""

    def __init__(self, events_dir: Path, rate: float, every_s: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.events_dir = events_dir
        self.rate = rate
        self.every_s = every_s
        self.appended = 0
        self.stop = threading.Event()

    def run(self) -> None:
        log = None
        reader = None
        samples: dict[str, EventBase] = {}
        carry = 0.0
        while not self.stop.wait(self.every_s):
            if log is None:
                if not (self.events_dir / ".lock").exists():
                    continue
                log = FileLog(self.events_dir, create=False)
                reader = log.reader(0)
            assert reader is not None
            while batch := reader.poll():
                for e in batch:
                    if isinstance(e, HardwareSampled):
                        samples["hw"] = e
                    elif isinstance(e, ModelServerSampled):
                        samples[e.endpoint] = e
            if not samples:
                continue
            carry += self.rate * self.every_s
            n, carry = int(carry), carry - int(carry)
            kinds = [*samples.values(), Heartbeat(agent="filler", run=samples["hw"].run)]
            out = [
                msgspec.structs.replace(kinds[(self.appended + i) % len(kinds)], seq=0, ts=0.0)
                for i in range(n)
            ]
            if out:
                log.append(out, sync="none")
                self.appended += len(out)
        if log is not None:
            log.close()


def _children(sup: Supervisor) -> dict[str, int]:
    """The supervisor's running children: name -> pid."""
    return {
        child.name: child.proc.pid
        for child in list(sup.children)
        if child.proc is not None and child.proc.poll() is None
    }


def run_night(
    root: Path, scenario: Scenario, time_scale: float, stop_after_s: float, filler: float
) -> Any:
    """Run the night in ``root``; return (workspace, sampler, wall seconds, outcome)."""
    from swarmlog.config import parse_config

    tasks = len(scenario.plan)
    ws = Workspace(root / "night")
    init_workspace(ws)
    fleet = start_fleet(scenario, time_scale=time_scale)
    # A reply's default limit is half the context (at most 8,192 tokens); a plan of hundreds of
    # items needs more, which [models.NAME] max_tokens gives.
    models = {
        name: {**profile, "max_tokens": 200 * tasks + 4096}
        for name, profile in fleet.config["models"].items()
    }
    config = parse_config({**fleet.config, "models": models}, where="bench").to_event_dict()
    with open(root / "supervisor.out", "w") as out:
        sup = Supervisor(ws, goal=scenario.goal, config=config, scenario=scenario.name, out=out)
        sampler = ProcSampler(ws.events, lambda _: _children(sup), every_s=0.25)
        sampler.start()
        fill = _Filler(ws.events, filler)
        if filler > 0:
            fill.start()
        t0 = time.monotonic()
        try:
            outcome = sup.run(stop_after_s=stop_after_s)
        finally:
            fleet.stop()
            for thread in (sampler, fill):
                thread.stop.set()
                if thread.is_alive():
                    thread.join()
    return ws, sampler, time.monotonic() - t0, outcome


# Reading it


def _window(samples: Sequence[tuple[int, dict[str, tuple[float, float]]]], lo: int, hi: int,
            name: str) -> float:  # fmt: skip
    """CPU microseconds per event of ``name`` between the samples nearest seq ``lo`` and ``hi``."""
    rows = [(seq, row[name]) for seq, row in samples if name in row]
    if len(rows) < 2:
        return float("nan")
    a = min(rows, key=lambda r: abs(r[0] - lo))
    b = min(rows, key=lambda r: abs(r[0] - hi))
    if b[0] <= a[0]:
        return float("nan")
    return (b[1][0] - a[1][0]) / (b[0] - a[0]) * 1e6


def cpu_and_rss(sampler: ProcSampler, last: int) -> dict[str, dict[str, float]]:
    names = sorted({n for _, row in sampler.samples for n in row})
    q = last // 4
    out = {}
    for name in names:
        rows = [(seq, row[name]) for seq, row in sampler.samples if name in row]
        early_rss = min(rows, key=lambda r: abs(r[0] - q))[1][1] if rows else float("nan")
        out[name] = {
            "cpu_us_per_event_early": _window(sampler.samples, 0, q, name),
            "cpu_us_per_event_late": _window(sampler.samples, last - q, last, name),
            "rss_mb_early": early_rss,
            "rss_mb_late": max(r[1][1] for r in rows[-4:]) if rows else float("nan"),
        }
    return out


def _time(fn: Callable[[], Any], repeat: int = 5) -> float:
    """Median microseconds of one call."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(times)


# Every fold a runtime process keeps, by name: (empty state, fold one event).
def _fold_table() -> dict[str, tuple[Any, Callable[[Any, Any], Any]]]:
    return {
        "board": (EMPTY_BOARD, apply_board),
        "context": (EMPTY_CONTEXT, apply_context),
        "reviews": (team_reviews.EMPTY, team_reviews.apply),
        "trust": (team_trust.EMPTY, team_trust.apply),
        "escalation": (levels.EMPTY, levels.apply),
        "router": (routing.EMPTY, routing.apply),
        "monitor": (pipeline.EMPTY, lambda st, e: pipeline.react(st, e)[0]),
        "state": (EMPTY, apply),
    }


def folds(events: Sequence[Event], ws: Workspace) -> dict[str, Any]:
    """Each fold's cost per event and its state's size early and late; the scheduler's scans
    and the renders at a quarter of the events and at the end."""
    n = len(events)
    q = max(1, n // 4)
    env = make_environment(ws)
    table = _fold_table()
    states = {name: empty for name, (empty, _) in table.items()}
    spent: dict[str, list[float]] = {name: [] for name in table}
    out: dict[str, Any] = {}
    for i, event in enumerate(events):
        for name, (_, fold) in table.items():
            t0 = time.perf_counter()
            states[name] = fold(states[name], event)
            spent[name].append((time.perf_counter() - t0) * 1e6)
        if i + 1 not in (q, n):
            continue
        when = "early" if i + 1 == q else "late"
        for name, value in states.items():
            out[f"{name}_state_kb_{when}"] = len(msgspec.msgpack.encode(value)) / 1024
        out.update({f"{k}_{when}": v for k, v in _scans(states, event.ts, env).items()})
        out[f"seq_{when}"] = event.seq
    for name, xs in spent.items():
        out[f"{name}_fold_us_early"] = statistics.fmean(xs[:q])
        out[f"{name}_fold_us_late"] = statistics.fmean(xs[-q:])
    return out


def _scans(states: dict[str, Any], now: float, env: Any) -> dict[str, float]:
    """The scheduler's scans of the board and the renders, on the folds as they are now."""
    board, state = states["board"], states["state"]
    view = FlowView(
        board=board,
        ctx=states["context"],
        reviews=states["reviews"],
        trust=states["trust"].scores,
        escalation=states["escalation"],
    )
    files = render_all(state, env)
    return {
        "tasks": len(board.tasks),
        "next_steps_us": _time(lambda: next_steps(view, now)),
        "ready_to_route_us": _time(lambda: ready_to_route(board)),
        "claimable_all_roles_us": _time(lambda: [claimable(board, r, now) for r in ROLES]),
        "render_team_state_ms": _time(lambda: render_team_state(state, env)) / 1000,
        "render_all_ms": _time(lambda: render_all(state, env), repeat=3) / 1000,
        "team_state_bytes": len(files["memory/team-state.md"]),
        "report_bytes": len(files["memory/report.md"]),
        "rendered_files": len(files),
    }


def prompts(events: Sequence[Event]) -> dict[str, Any]:
    """Prompt tokens of each kind's first and last call, and the largest prompt."""
    kind_of_task = {e.task_id: e.task_kind for e in events if isinstance(e, TaskSubmitted)}
    by_kind: dict[str, list[int]] = {}
    biggest = (0, "")
    for e in events:
        if isinstance(e, ModelCallFinished) and e.task_id:
            kind = kind_of_task.get(e.task_id, "batch" if e.batch_id else "?")
            by_kind.setdefault(kind, []).append(e.prompt_tokens)
            biggest = max(biggest, (e.prompt_tokens, e.task_id))
    return {
        "by_kind": {k: {"first": v[0], "last": v[-1], "max": max(v)} for k, v in by_kind.items()},
        "largest": {"tokens": biggest[0], "task": biggest[1]},
    }


def files(ws: Workspace) -> dict[str, dict[str, int]]:
    """Count and bytes of the files under memory/ and alerts/, by folder."""
    out: dict[str, dict[str, int]] = {}
    for top in (ws.memory, ws.root / "alerts"):
        for path in top.rglob("*"):
            if path.is_file():
                key = path.parent.relative_to(ws.root).as_posix()
                row = out.setdefault(key, {"files": 0, "bytes": 0})
                row["files"] += 1
                row["bytes"] += path.stat().st_size
    return dict(sorted(out.items()))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=int, default=190, help="work items in the plan (default 190)")
    p.add_argument("--iterations", type=int, default=2, help="max iterations (default 2)")
    p.add_argument("--time-scale", type=float, default=0.1, help="real s per simulated s")
    p.add_argument(
        "--filler",
        type=float,
        default=1500.0,
        help="also append copies of the monitor's samples at N events/s (a long night's readings)",
    )
    p.add_argument("--stop-after", type=float, default=900.0, help="give up after N seconds")
    p.add_argument("--keep", action="store_true", help="keep the workspace (its path is printed)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="swarmlog-scale-"))
    try:
        scenario = scale_scenario(args.tasks, args.iterations)
        ws, sampler, wall, outcome = run_night(
            root, scenario, args.time_scale, args.stop_after, args.filler
        )
        events = list(FileLog(ws.events, create=False).read())
        last = events[-1].seq if events else 0
        result = {
            "tasks_planned": args.tasks,
            "outcome": outcome,
            "wall_s": round(wall, 1),
            "events": last,
            "processes": cpu_and_rss(sampler, last),
            "folds": folds(events, ws),
            "prompts": prompts(events),
            "files": files(ws),
        }
    finally:
        if args.keep:
            print(f"workspace kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(result, sort_keys=True))
        return 0
    _print(result)
    return 0


def _print(r: dict[str, Any]) -> None:
    print(f"night: {r['tasks_planned']} work items, {r['events']} events, {r['wall_s']} s, "
          f"outcome {r['outcome']}")  # fmt: skip
    print("\n| process | CPU us/event early | late | RSS MB early | late |")
    print("|---|---|---|---|---|")
    for name, row in r["processes"].items():
        print(
            f"| {name} | {row['cpu_us_per_event_early']:.0f} | {row['cpu_us_per_event_late']:.0f}"
            f" | {row['rss_mb_early']:.1f} | {row['rss_mb_late']:.1f} |"
        )
    f = r["folds"]
    print("\n| figure | early | late |")
    print("|---|---|---|")
    for key in sorted(k[: -len("_early")] for k in f if k.endswith("_early")):
        early, late = f.get(f"{key}_early"), f.get(f"{key}_late")
        print(f"| {key} | {_fmt(early)} | {_fmt(late)} |")
    print("\n| prompt kind | first tokens | last | max |")
    print("|---|---|---|---|")
    for kind, row in sorted(r["prompts"]["by_kind"].items()):
        print(f"| {kind} | {row['first']} | {row['last']} | {row['max']} |")
    big = r["prompts"]["largest"]
    print(f"largest prompt: {big['tokens']} tokens ({big['task']})")
    print("\n| folder | files | bytes |")
    print("|---|---|---|")
    for folder, row in r["files"].items():
        print(f"| {folder} | {row['files']} | {row['bytes']:,} |")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


if __name__ == "__main__":
    raise SystemExit(main())
