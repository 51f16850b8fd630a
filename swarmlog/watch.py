"""``swarmlog watch``: a live terminal view folded from the log alone.

The view is three pure folds of the log (the team projection, the router's state and the
escalation fold) plus the last hardware sample; ``render_view`` turns them into lines for a given
terminal size and clock, and ``summary_line`` into one plain line for pipes and log files. The loop
in ``watch`` only reads new records with its own cursor and redraws; it never asks another
process anything.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

import msgspec
from msgspec.structs import replace

from swarmlog.escalation import levels
from swarmlog.events import Event, EventBase, HardwareSampled, RunStarted
from swarmlog.log import EventLog, FileLog
from swarmlog.render import LEVEL_NAMES, ROLE_ORDER, fmt_duration, fmt_ts, trust_text
from swarmlog.routing import stats as router
from swarmlog.state import EMPTY as SWARM_EMPTY
from swarmlog.state import SwarmState
from swarmlog.state import apply as swarm_apply
from swarmlog.text import plain_line as _p
from swarmlog.workspace import Workspace

__all__ = [
    "CLEAR",
    "EMPTY_VIEW",
    "SECTIONS",
    "View",
    "fold_view",
    "render_view",
    "summary_fields",
    "summary_line",
    "supervisor_gone",
    "watch",
]

CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen: works on any ANSI terminal over ssh
SECTIONS = ("PHASE", "AGENTS", "MODELS", "GPU", "ALERTS")
_GB = 1e9


class View(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the live view shows, folded from the log."""

    swarm: SwarmState = SWARM_EMPTY
    router: router.RouterState = router.EMPTY
    escalation: levels.EscalationState = levels.EMPTY
    hardware: HardwareSampled | None = None
    started: RunStarted | None = None  # the newest run_started: the supervisor's host and pid


EMPTY_VIEW = View()


def fold_view(view: View, events: Iterable[Event | EventBase]) -> View:
    """Fold events into the view."""
    swarm, rs, esc, hw = view.swarm, view.router, view.escalation, view.hardware
    started = view.started
    for event in events:
        swarm = swarm_apply(swarm, event)
        rs = router.apply(rs, event)
        esc = levels.apply(esc, event)
        if isinstance(event, HardwareSampled):
            hw = event
        elif isinstance(event, RunStarted):
            started = event
    return replace(view, swarm=swarm, router=rs, escalation=esc, hardware=hw, started=started)


# Is the run's supervisor still there? (I/O: asked once per refresh by the loop)

_START_SLACK_S = 2.0  # a process's start time and the log's clock may differ by rounding


def supervisor_gone(view: View, *, host: str | None = None) -> str:
    """Return why the open run's supervisor is known to be gone, else "".

    Known only on the host that runs it: the newest ``run_started`` records the supervisor's
    host and pid. Gone when no such process exists (or it is a zombie), or when the pid now
    belongs to a process started after that ``run_started`` (the pid was reused). A run that
    ended, a log from another host, or one without a pid: "" (nothing can be said).
    """
    import psutil  # type: ignore[import-untyped]  # no stubs in the pinned dev set

    t = view.swarm.team
    started = view.started
    if not t.run or t.outcome or started is None or not started.pid:
        return ""
    if started.host != (host if host is not None else os.uname().nodename):
        return ""
    try:
        proc = psutil.Process(started.pid)
        alive = (
            proc.status() != psutil.STATUS_ZOMBIE
            and proc.create_time() <= started.ts + _START_SLACK_S
        )
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        alive = False
    except psutil.Error:  # e.g. access denied: it exists; say nothing
        alive = True
    if alive:
        return ""
    return f"supervisor pid {started.pid} on {started.host} is gone"


def _gone_line(view: View, gone: str, now: float) -> str:
    s = view.swarm
    return (
        f"{gone}: the run stopped at seq {s.seq} ({fmt_ts(s.ts, '%H:%M:%S')}Z, "
        f"{fmt_duration(now - s.ts)} ago) without ending; continue it with "
        "'swarmlog run --resume' or end it with 'swarmlog abort'"
    )


# Rendering (pure: the clock and the size are arguments)


def _phase_lines(view: View, now: float, gone: str = "") -> list[str]:
    s = view.swarm
    t = s.team
    if not t.run:
        return ["no run yet: start one with 'swarmlog run'"]
    end = t.ended_ts or (s.ts if gone else now)  # a dead run's clock stopped at its last event
    lines = [_gone_line(view, gone, now)] if gone else []
    outcome = f", ended: {_p(t.outcome)}" if t.outcome else ""
    paused = ", PAUSED" if t.paused else ""
    lines.append(
        f"run {_p(t.run)} started {fmt_ts(t.started_ts)}Z, {fmt_duration(end - t.started_ts)} "
        f"elapsed{outcome}{paused}"
    )
    if s.phases.spans:
        span = s.phases.spans[-1]
        stop = span.completed_ts or end
        elapsed = stop - span.entered_ts
        it = f" (iteration {span.iteration})" if span.iteration else ""
        if span.expected_s:
            ratio = elapsed / span.expected_s
            over = "  OVERRUN" if ratio > 1 else ""
            against = f" of expected {fmt_duration(span.expected_s)} ({ratio:.0%}){over}"
        else:
            against = " (no expected duration)"
        done = f", {_p(span.outcome or 'done')}" if span.completed_ts else ""
        lines.append(f"phase {_p(span.phase)}{it}: {fmt_duration(elapsed)}{against}{done}")
    else:
        lines.append("phase: not started")
    counts = ", ".join(f"{k} {v}" for k, v in sorted(s.board.counts.items())) or "none"
    lines.append(f"tasks: {counts}")
    return lines


def _role_rank(agent: str) -> tuple[int, str]:
    role = agent.split("-")[0]
    return (ROLE_ORDER.index(role) if role in ROLE_ORDER else len(ROLE_ORDER), agent)


def _agent_lines(view: View) -> list[str]:
    agents = view.swarm.team.agents
    if not agents:
        return ["no agents registered yet"]
    lines = [f"{'agent':<14} {'status':<11} {'task':<22} trust"]
    for name in sorted(agents, key=_role_rank):
        a = agents[name]
        task = _p(a.task_id, 22) or "-"
        lines.append(f"{_p(name):<14} {_p(a.status):<11} {task:<22} {trust_text(a)}")
    return lines


def _model_lines(view: View) -> list[str]:
    rs = view.router
    names = [p.name for p in rs.config.profiles]
    names += sorted(set(view.swarm.models.models) - set(names))
    if not names:
        return ["no models configured yet"]
    lines = [
        f"{'model':<16} {'in flight':>9} {'queued':>6} {'calls':>6} {'avg':>8} {'max':>8}  state"
    ]
    for name in names:
        p = rs.config.profile(name)
        ld = rs.load.get(name)
        running = ld.started if ld else 0
        queued = max(0, ld.assigned - ld.started) if ld else 0
        slots = p.slots if p else 1
        ms = view.swarm.models.models.get(name)
        calls = ms.calls if ms else 0
        avg = f"{ms.total_ms / ms.calls / 1000:.2f}s" if ms and ms.calls else "-"
        top = f"{ms.max_ms / 1000:.2f}s" if ms and ms.calls else "-"
        state = []
        circuit = rs.circuits.get(name)
        if circuit is not None and circuit.state != "closed":
            state.append(f"circuit {circuit.state}")
        if p is not None and p.endpoint in rs.unreachable:
            state.append("server unreachable")
        lines.append(
            f"{_p(name, 16):<16} {f'{running}/{slots}':>9} {queued:>6} {calls:>6} {avg:>8} {top:>8}"
            f"  {', '.join(state) or 'ok'}"
        )
    return lines


def _gpu_lines(view: View) -> list[str]:
    hw = view.hardware
    if hw is None:
        return ["no hardware sample yet (the monitor writes one every few seconds)"]
    lines = []
    for g in hw.gpus:
        used = g.mem_total - g.mem_free if g.mem_free else g.mem_used
        share = used / g.mem_total if g.mem_total else 0.0
        util = f", util {g.util_gpu}%" if g.util_gpu is not None else ""
        temp = f", {g.temperature_c}C" if g.temperature_c is not None else ""
        lines.append(
            f"GPU {g.index} {_p(g.name, 60)}: {used / _GB:.1f}/{g.mem_total / _GB:.1f} GB "
            f"({share:.0%}){util}{temp}"
        )
    if not hw.gpus:
        lines.append(f"no GPU{': ' + hw.nvml_error if hw.nvml_error else ''}")
    if hw.ram_total:
        lines.append(
            f"RAM {(hw.ram_total - hw.ram_available) / _GB:.1f}/{hw.ram_total / _GB:.1f} GB "
            f"({hw.ram_percent:.0f}%), sampled {fmt_ts(hw.ts, '%H:%M:%S')}Z"
        )
    return lines


def _alert_lines(view: View) -> list[str]:
    esc = view.escalation
    lines = [f"team directive: {levels.team_directive(esc)}"]
    for e in sorted(esc.open.values(), key=lambda e: e.seq):
        who = _p(e.agent or e.task_id or e.subject, 60)
        what = f"{_p(e.escalation_id)} {_p(e.rule)} {who}: {_p(e.reason, 300)}"
        lines.append(f"open L{e.level} {what}".rstrip())
    alerts = view.swarm.alerts.alerts
    for a in sorted(alerts.values(), key=lambda a: a.seq):
        if not a.acked:
            aid = _p(a.alert_id)
            lines.append(f"alert L{a.level} {aid}: {_p(a.title, 300)} (swarmlog ack {aid})")
    if len(lines) == 1:
        lines.append("no open alerts")
    return lines


def _fit(line: str, width: int) -> str:
    return line if len(line) <= width else line[: max(width - 1, 0)] + "…"


def render_view(
    view: View, *, now: float, width: int = 100, height: int = 40, gone: str = ""
) -> list[str]:
    """Return the screen's lines (at most ``height``, each at most ``width`` characters).

    ``gone`` (from ``supervisor_gone``) says the run's supervisor is gone: the view says so
    and stops the run's clocks at its last event.
    """
    level = view.escalation.level
    t = view.swarm.team
    head = (
        f"swarmlog watch: seq {view.swarm.seq}, level {level} "
        f"({LEVEL_NAMES.get(level, 'escalated')}), {fmt_ts(now, '%H:%M:%S')}Z"
    )
    goal = f"goal: {_p(t.goal, 300)}" if t.goal else ""
    blocks = {
        "PHASE": _phase_lines(view, now, gone),
        "AGENTS": _agent_lines(view),
        "MODELS": _model_lines(view),
        "GPU": _gpu_lines(view),
        "ALERTS": _alert_lines(view),
    }
    # Keep every section's heading on screen: drop the blank separators first, then trim the
    # longest sections, each ending with a count of the rows it hides.
    top = 2 if goal else 1
    rows_total = sum(len(b) for b in blocks.values())
    spacious = top + 2 * len(blocks) + rows_total + 1 <= height
    budget = max(height - top - len(blocks) * (2 if spacious else 1), 2 * len(blocks))
    hidden = dict.fromkeys(blocks, 0)

    def shown(name: str) -> int:
        return len(blocks[name]) + (1 if hidden[name] else 0)

    while sum(shown(k) for k in blocks) > budget:
        name = max(blocks, key=shown)
        if len(blocks[name]) <= 1:
            break
        blocks[name] = blocks[name][:-1]
        hidden[name] += 1
    lines = [head] + ([goal] if goal else [])
    for name, rows in blocks.items():
        more = [f"… {hidden[name]} more (enlarge the terminal)"] if hidden[name] else []
        lines += [*([""] if spacious else []), name, *(f"  {r}" for r in [*rows, *more])]
    if spacious:
        lines.append("")
    return [_fit(x, width) for x in lines[:height]]


def summary_fields(view: View, *, now: float, gone: str = "") -> dict[str, Any]:
    """Return the summary line's figures as one JSON-able object (``watch --json``)."""
    s = view.swarm
    t = s.team
    end = t.ended_ts or (s.ts if gone else now)
    phase: dict[str, Any] | None = None
    if s.phases.spans:
        span = s.phases.spans[-1]
        phase = {
            "name": span.phase,
            "iteration": span.iteration,
            "elapsed_s": round((span.completed_ts or end) - span.entered_ts, 3),
            "expected_s": span.expected_s,
            "outcome": span.outcome if span.completed_ts else "",
        }
    gpus = view.hardware.gpus if view.hardware is not None else ()
    return {
        "ts": now,
        "seq": s.seq,
        "run": t.run,
        "goal": t.goal,
        "phase": phase,
        "outcome": t.outcome,
        "paused": t.paused,
        "agents": {
            name: {"status": a.status, "task": a.task_id, "trust": a.trust}
            for name, a in sorted(t.agents.items())
        },
        "tasks": s.board.counts,
        "calls": {
            name: {"running": ld.started, "queued": max(0, ld.assigned - ld.started)}
            for name, ld in sorted(view.router.load.items())
            if ld.assigned
        },
        "gpu_mem_used": sum(g.mem_total - g.mem_free for g in gpus) if gpus else None,
        "gpu_mem_total": sum(g.mem_total for g in gpus) if gpus else None,
        "level": view.escalation.level,
        "unacked_alerts": sum(not a.acked for a in s.alerts.alerts.values()),
        "directive": levels.team_directive(view.escalation),
        "supervisor_gone": gone,  # "" unless the open run's supervisor is known to be gone
    }


def summary_line(view: View, *, now: float, gone: str = "") -> str:
    """Return one plain line for a pipe or a log file."""
    s = view.swarm
    t = s.team
    phase = "-"
    if s.phases.spans:
        span = s.phases.spans[-1]
        elapsed = (span.completed_ts or t.ended_ts or (s.ts if gone else now)) - span.entered_ts
        expected = f"/{fmt_duration(span.expected_s)}" if span.expected_s else ""
        phase = f"{span.phase} {fmt_duration(elapsed)}{expected}"
    working = sum(a.status == "working" for a in t.agents.values())
    flights = []
    for name, ld in sorted(view.router.load.items()):
        if ld.assigned:
            flights.append(f"{name} {ld.started}+{max(0, ld.assigned - ld.started)}q")
    gpu = "-"
    if view.hardware is not None and view.hardware.gpus:
        used = sum(g.mem_total - g.mem_free for g in view.hardware.gpus)
        total = sum(g.mem_total for g in view.hardware.gpus)
        gpu = f"{used / _GB:.1f}/{total / _GB:.1f}GB"
    unacked = sum(not a.acked for a in s.alerts.alerts.values())
    ended = f" ended={t.outcome}" if t.outcome else ""
    return (
        f"{fmt_ts(now, '%Y-%m-%dT%H:%M:%S')}Z seq={s.seq} run={t.run or '-'} phase={phase}"
        f" agents={working}/{len(t.agents)} working calls={','.join(flights) or '-'} gpu={gpu}"
        f" level={view.escalation.level} alerts={unacked}"
        f" directive={levels.team_directive(view.escalation)}{ended}"
        + (f" STOPPED: {_gone_line(view, gone, now)}" if gone else "")
    )


# The loop (I/O)


def watch(
    ws: Workspace,
    *,
    log: EventLog | None = None,
    interval_s: float = 2.0,
    once: bool = False,
    out: TextIO | None = None,
    is_tty: bool | None = None,
    clock: Callable[[], float] = time.time,
    max_frames: int | None = None,
    as_json: bool = False,
) -> int:
    """Redraw the view every ``interval_s`` until the run ends or Ctrl-C (or once); return the
    exit code.

    On a terminal the screen is cleared and redrawn; otherwise one plain summary line is
    printed per interval; with ``as_json`` one JSON object (``summary_fields``) per interval,
    terminal or not. ``log`` is the selected log (default: the workspace's file log).
    """
    stream = out or sys.stdout
    tty = stream.isatty() if is_tty is None else is_tty
    log = log or FileLog(ws.events, create=False)
    reader = log.reader()
    view = EMPTY_VIEW
    frames = 0
    try:
        while True:
            while batch := reader.poll():
                view = fold_view(view, batch)
            now = clock()
            gone = supervisor_gone(view)
            if as_json:
                fields = summary_fields(view, now=now, gone=gone)
                stream.write(msgspec.json.encode(fields).decode() + "\n")
            elif tty:
                size = shutil.get_terminal_size()
                lines = render_view(
                    view, now=now, width=size.columns, height=size.lines - 1, gone=gone
                )
                prefix = "" if once else CLEAR
                stream.write(prefix + "\n".join(lines) + "\n")
            else:
                stream.write(summary_line(view, now=now, gone=gone) + "\n")
            stream.flush()
            frames += 1
            if once or (max_frames is not None and frames >= max_frames):
                return 0
            if view.swarm.team.outcome:  # the run ended: that was its last frame
                if not as_json:
                    stream.write(f"run {view.swarm.team.run} ended: {view.swarm.team.outcome}\n")
                    stream.flush()
                return 0
            time.sleep(interval_s)
    except KeyboardInterrupt:
        if tty and not as_json:
            stream.write("\n")
            stream.flush()
        return 0
    finally:
        log.close()
