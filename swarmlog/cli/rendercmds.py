"""Sub-commands that read projections: render, replay, status, report."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from swarmlog.cli.common import (
    add_command,
    emit_json,
    iso,
    open_log,
    positive_int,
    wants_json,
    workspace,
)
from swarmlog.errors import SwarmlogError, UsageError
from swarmlog.workspace import Workspace

if TYPE_CHECKING:
    from swarmlog.events import Event
    from swarmlog.log import EventLog
    from swarmlog.state import SwarmState

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "render",
        "rebuild memory/*.md and alerts/ from the log",
        "swarmlog render --follow",
        description="Fold the log (starting from the newest valid snapshot) and write "
        "memory/team-state.md, decisions.md, report.md, emergency.md (while an emergency is "
        "open) and alerts/ALERT-*.md; only files whose content changed are rewritten.",
    )
    p.add_argument("--follow", "-f", action="store_true", help="keep the files current")
    p.add_argument(
        "--snapshot-every",
        type=positive_int,
        default=10_000,
        metavar="N",
        help="with --follow: write a snapshot every N events (default 10000)",
    )
    p.set_defaults(func=cmd_render)

    p = add_command(
        sub,
        "replay",
        "post-mortem: the state at a moment, a task's story, or a verification of the log",
        "swarmlog replay --until 2026-01-28T03:45:00Z --out /tmp/then",
    )
    p.add_argument("--until", help="a seq, or a UTC time like 2026-01-28T03:45:00Z")
    p.add_argument("--out", help="folder to render into (default: a fresh temporary folder)")
    p.add_argument("--explain", metavar="TASK", help="print one task's story, in order")
    p.add_argument(
        "--verify",
        action="store_true",
        help="fold from zero; compare snapshots and checkpoints; re-derive recorded decisions",
    )
    p.add_argument(
        "--from-snapshot",
        action="store_true",
        help="start from the newest usable snapshot (same output as from zero, faster)",
    )
    p.set_defaults(func=cmd_replay)

    p = add_command(sub, "status", "the team now: phase, agents, tasks, alerts", "swarmlog status")
    p.set_defaults(func=cmd_status)

    p = add_command(
        sub, "report", "print the morning report (Markdown)", "swarmlog report > report.md"
    )
    p.set_defaults(func=cmd_report)


def _warn(reasons: list[str]) -> None:
    for reason in reasons:
        print(f"swarmlog: warning: {reason}", file=sys.stderr)


def cmd_render(args: argparse.Namespace) -> int:
    from swarmlog.render import make_environment
    from swarmlog.replay import follow, render_once
    from swarmlog.runtime.parent import SUPERVISOR_ENV

    ws = workspace(args)
    env = make_environment(ws)
    if not args.follow:
        state, changed, reasons = render_once(ws, env, log=open_log(args))
        _warn(reasons)
        _print_rendered(args, state, changed)
        return 0
    stop = threading.Event()
    stopped_by: list[int] = []

    def on_signal(sig: int, _frame: FrameType | None) -> None:
        stopped_by.append(sig)
        stop.set()

    # Both stop the loop at its next wake, so the last render and snapshot are written (Ctrl-C
    # raised KeyboardInterrupt inside the file watcher, which printed a line of its own).
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    if os.environ.get(SUPERVISOR_ENV):  # started by 'swarmlog run': stop when it is gone
        threading.Thread(target=_stop_when_orphaned, args=(stop,), daemon=True).start()
    try:
        follow(
            ws,
            env,
            stop=stop,
            snapshot_every=args.snapshot_every,
            log=open_log(args),
            on_render=lambda state, changed: _print_rendered(args, state, changed),
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 130 if signal.SIGINT in stopped_by else 0  # Ctrl-C: 130 as 'log --follow'


def _stop_when_orphaned(stop: threading.Event, every_s: float = 0.5) -> None:
    """A supervisor killed with SIGKILL cannot stop its renderer; the renderer notices instead."""
    from swarmlog.runtime.parent import expected_parent

    parent = expected_parent()
    while not stop.wait(every_s):
        if os.getppid() != parent:
            stop.set()


def _print_rendered(args: argparse.Namespace, state: SwarmState, changed: list[str]) -> None:
    if wants_json(args):
        emit_json({"seq": state.seq, "changed": changed})
    elif changed:
        print(f"seq {state.seq}: wrote {', '.join(changed)}", flush=True)
    else:
        print(f"seq {state.seq}: nothing changed", flush=True)


def cmd_replay(args: argparse.Namespace) -> int:
    from swarmlog.events import kind_of
    from swarmlog.render import make_environment, render_all, write_outputs
    from swarmlog.replay import explain, explain_events, parse_until, state_until

    ws = workspace(args)
    if args.explain is not None and not args.explain.strip():
        # An empty id ('--explain "$TASK"' with TASK unset) rendered the whole log instead.
        raise UsageError(
            "--explain needs a task id; list them with 'swarmlog log --kind task_submitted'"
        )
    modes = sum(bool(x) for x in (args.explain, args.verify))
    if modes > 1:
        raise UsageError("give one of --explain and --verify")
    if modes:
        mode = "--verify" if args.verify else "--explain"
        for option, given in (("--out", args.out), ("--from-snapshot", args.from_snapshot)):
            if given:
                raise UsageError(
                    f"{option} renders the state at --until; {mode} prints its findings "
                    f"instead: drop {option} or {mode}"
                )
    # An empty --until ('--until "$WHEN"' with WHEN unset) is refused, not read as no limit.
    seq, ts = parse_until(args.until) if args.until is not None else (None, None)
    out = _out_folder(args.out, ws) if args.out else None
    log = open_log(args)
    try:
        if args.verify:
            return _verify(args, ws, log, seq, ts)
        if args.explain:
            found = False
            events = _until(log.read(), seq, ts)
            if wants_json(args):
                for event, story in explain_events(events, args.explain):
                    found = True
                    emit_json(
                        {"seq": event.seq, "ts": event.ts, "kind": kind_of(event), "story": story}
                    )
            else:
                for line in explain(events, args.explain):
                    found = True
                    print(line)
            if not found:
                upto = f" up to --until {args.until}" if args.until is not None else ""
                print(
                    f"swarmlog: error: no event{upto} mentions task {args.explain!r}; "
                    "check the id with 'swarmlog log --kind task_submitted'",
                    file=sys.stderr,
                )
                return 1
            return 0
        folder = ws.snapshots if args.from_snapshot else None
        state, reasons = state_until(log, seq=seq, ts=ts, snapshot_folder=folder)
        first = next(iter(log.read()), None) if ts is not None and state.seq == 0 else None
    finally:
        log.close()
    _warn(reasons)
    if first is not None:  # a time before the night: say so, or it reads as an empty night
        print(
            f"swarmlog: warning: --until {args.until} is before the log's first event (seq "
            f"{first.seq} at {iso(first.ts)}): the state rendered is the empty one",
            file=sys.stderr,
        )
    out = out or Path(tempfile.mkdtemp(prefix="swarmlog-replay-"))
    files = render_all(state, make_environment(ws))
    try:
        write_outputs(Workspace(out), files)
    except OSError as exc:
        raise SwarmlogError(
            f"cannot write into --out {out}: {exc.strerror} ({exc.filename}); "
            "choose a folder you can write"
        ) from exc
    if wants_json(args):
        emit_json({"seq": state.seq, "ts": state.ts, "out": str(out)})
    else:
        print(f"state at seq {state.seq} rendered into {out}")
    return 0


def _out_folder(text: str, ws: Workspace) -> Path:
    """``--out``, checked before the fold: a folder (made if missing) that can be written, and
    not the workspace itself, whose files the past state would overwrite."""
    out = Path(text)
    if out.resolve() == ws.root.resolve():
        # Rendering there rewound memory/*.md to the past state and removed every alert file and
        # emergency.md raised since; a quiet or paused night would not render them back.
        raise UsageError(
            f"--out {out} is the workspace: the state at --until would replace its memory/*.md "
            "and alerts/; give another folder (default: a fresh temporary one)"
        )
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder; give a folder (made if missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SwarmlogError(
            f"cannot write into --out {out}: {exc.strerror} ({exc.filename}); "
            "choose a folder you can write"
        ) from exc
    return out


def _until(events: Iterable[Event], seq: int | None, ts: float | None) -> Iterator[Event]:
    """The events up to --until: seq at most ``seq``, time at most ``ts``."""
    for event in events:
        if (seq is not None and event.seq > seq) or (ts is not None and event.ts > ts):
            return
        yield event


def _verify(
    args: argparse.Namespace, ws: Workspace, log: EventLog, seq: int | None, ts: float | None
) -> int:
    from swarmlog.render import plain_line
    from swarmlog.replay import load_check_modules, verify

    load_check_modules()
    folded = 0

    def counted() -> Iterator[Event]:
        nonlocal folded
        for event in log.read():
            yield event
            folded = event.seq  # the event verify took (it stops at --until before this line)

    problems = verify(counted(), ws.snapshots, until_seq=seq, until_ts=ts)
    if seq is None and ts is None:
        # Past the end of a whole fold only snapshots can be named. Such a snapshot was compared
        # with nothing: it is news about the log, which lost records since the snapshot was
        # taken (a torn or cut tail; 'swarmlog verify' checks it), not a fold that disagrees.
        _warn(
            [
                f"{p.what}: not compared; the log lost records after seq {folded} since it was "
                f"taken (a torn or cut tail: run 'swarmlog verify'), or it is another log's"
                for p in problems
                if p.seq > folded
            ]
        )
        problems = [p for p in problems if p.seq <= folded]
    for p in problems:
        if wants_json(args):
            emit_json({"seq": p.seq, "mismatch": p.what})
        else:
            print(plain_line(str(p)))  # it quotes ids and names from the log
    last = log.last_seq()
    if wants_json(args):
        emit_json(
            {"ok": not problems, "mismatches": len(problems), "folded": folded, "last_seq": last}
        )
    else:
        verdict = "ok" if not problems else f"{len(problems)} mismatch(es)"
        upto = f" (up to --until {args.until}, of {last})" if args.until else ""
        print(f"{verdict}: folded {folded} events{upto}")
    return 0 if not problems else 1


def _current(args: argparse.Namespace) -> SwarmState:
    from swarmlog.snapshot import load_state

    ws = workspace(args)
    log = open_log(args)
    try:
        state, reasons = load_state(log, ws.snapshots)
    finally:
        log.close()
    _warn(reasons)
    return state


def cmd_status(args: argparse.Namespace) -> int:
    from swarmlog.render import LEVEL_NAMES, plain_line, shell_word, trust_text

    s = _current(args)
    t = s.team
    if wants_json(args):
        emit_json(
            {
                "seq": s.seq,
                "run": t.run,
                "phase": t.phase,
                "iteration": t.iteration,
                "outcome": t.outcome,
                "paused": t.paused,
                "level": s.alerts.level,
                "emergency": bool(s.alerts.emergency_since),
                "tasks": s.board.counts,
                "agents": {
                    a.agent: {"status": a.status, "task": a.task_id, "trust": a.trust}
                    for a in t.agents.values()
                },
                "unacked_alerts": sorted(
                    a.alert_id for a in s.alerts.alerts.values() if not a.acked
                ),
                "blockers": [t.blockers[k] for k in sorted(t.blockers)],
            }
        )
        return 0
    # Names, ids, titles and blockers come from agents and models: each printed as one line
    # of plain text (an ANSI escape sequence in a title would colour or rewrite the terminal),
    # cut to a length a line can show (a 1 MB title was printed whole).
    ended = f", {plain_line(t.outcome, 120)}" if t.outcome else ""
    paused = ", PAUSED" if t.paused else ""
    if t.run:
        phase = plain_line(t.phase, 60) or "-"
        print(f"run {plain_line(t.run, 120)} at seq {s.seq}: phase {phase}{ended}{paused}")
    else:
        print(f"no run in the log yet (seq {s.seq}); start one with 'swarmlog run GOAL'")
    level = s.alerts.level
    emergency = ", EMERGENCY open: see memory/emergency.md" if s.alerts.emergency_since else ""
    print(f"escalation level {level} ({LEVEL_NAMES.get(level, 'escalated')}){emergency}")
    counts = ", ".join(f"{plain_line(k, 40)} {v}" for k, v in sorted(s.board.counts.items()))
    print(f"tasks: {counts or 'none'}")
    for a in sorted(t.agents.values(), key=lambda a: a.agent):
        name, status = plain_line(a.agent, 60), plain_line(a.status, 40)
        task = plain_line(a.task_id, 80)
        print(f"  {name:<12} {status:<10} {task or '-':<16} trust {trust_text(a)}")
    unacked = [a for a in s.alerts.alerts.values() if not a.acked]
    for x in sorted(unacked, key=lambda x: x.seq):
        title = plain_line(x.title, 200)
        ack = f"swarmlog ack {shell_word(x.alert_id)}"  # pasted as it is printed
        print(f"alert {plain_line(x.alert_id, 80)} level {x.level}: {title} ({ack})")
    for key in sorted(t.blockers):
        print(f"blocker: {plain_line(t.blockers[key], 300)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from swarmlog.render import make_environment, render_all

    s = _current(args)
    files = render_all(s, make_environment(workspace(args)))
    markdown = files["memory/report.md"]
    if wants_json(args):  # the figures a script wants, and the report as printed
        t = s.team
        emit_json(
            {
                "seq": s.seq,
                "run": t.run,
                "goal": t.goal,
                "phase": t.phase,
                "outcome": t.outcome,
                "started_ts": t.started_ts,
                "ended_ts": t.ended_ts,
                "level": s.alerts.level,
                "tasks": s.board.counts,
                "unacked_alerts": sorted(
                    a.alert_id for a in s.alerts.alerts.values() if not a.acked
                ),
                "path": "memory/report.md",
                "markdown": markdown,
            }
        )
        return 0
    sys.stdout.write(markdown)
    return 0
