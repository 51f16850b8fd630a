"""The human's side of escalation: ``alerts``, ``ack``, ``pause``, ``resume``, ``abort``.

Each command except ``alerts`` appends one ``human_command`` event (actor ``human``); the team
obeys it as soon as its monitor reads the event (``levels.team_directive``), whichever process
appended it, and every view shows its effect at once (``swarmlog.state.escalations`` is the one
rule for all of them). Each answer says who will act on it:

- ``ack`` of something already acknowledged appends nothing (exit 0): the rule would change
  nothing, and a second event would only make the log and the report say it twice.
- ``pause``, ``resume`` and ``abort`` with no run in the log, or after the run ended, are refused
  (exit 1): no team is there to obey them. ``ack`` is still recorded (the alerts are marked
  acknowledged) and says that no run will act on it.
- When the run is open in the log but its supervisor is known to be gone (``watch`` tells the same
  way), the command is recorded and the answer says nothing acts on it until ``swarmlog run
  --resume``. ``abort`` then also appends what that run's monitor and supervisor would have: the
  level-4 escalation and alert (by the monitor's own rule) and ``run_ended`` (outcome
  ``aborted``), so every view shows the abort at once and a new run can start.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

import msgspec
from msgspec.structs import replace

from swarmlog.cli.common import add_command, emit_json, iso, open_log, wants_json
from swarmlog.errors import SwarmlogError
from swarmlog.events import ConfigLoaded, Event, HumanCommand, RunEnded, RunStarted
from swarmlog.text import plain_line

if TYPE_CHECKING:
    from swarmlog.escalation.levels import EscalationState
    from swarmlog.log import EventLog

__all__ = ["NothingToDo", "UnknownAlert", "register"]


class UnknownAlert(SwarmlogError):
    """Raised when ``ack`` names an alert or escalation the log does not hold."""


class NothingToDo(SwarmlogError):
    """Raised when ``pause``, ``resume`` or ``abort`` has no run to act on."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "alerts",
        "list open and past alerts, newest first",
        "swarmlog alerts --open",
        description="List the alerts raised in this workspace's log: their id, level, status "
        "(open, acked, resolved), time, rule and title.",
    )
    p.add_argument(
        "--open",
        action="store_true",
        help="only alerts not yet acknowledged (open, or resolved but not acknowledged)",
    )
    p.set_defaults(func=cmd_alerts)

    p = add_command(
        sub,
        "ack",
        "acknowledge an alert or escalation so the team can continue",
        "swarmlog ack A3",
    )
    p.add_argument("id", help="an alert id (A3), an escalation id (E2), or 'all'")
    p.add_argument("--text", default="", help="a note for the morning report")
    p.set_defaults(func=cmd_ack)

    for name, summary, example in (
        ("pause", "pause the team: agents stop taking new work", "swarmlog pause 'checking GPU'"),
        ("resume", "resume the team and clear level-3 emergencies", "swarmlog resume"),
        ("abort", "shut the run down gracefully, keeping its state", "swarmlog abort 'wrong goal'"),
    ):
        p = add_command(sub, name, summary, example)
        p.add_argument("text", nargs="?", default="", help="why (kept in the log)")
        p.set_defaults(func=cmd_command, command_name=name)


class _Now(msgspec.Struct, frozen=True, kw_only=True):
    """What the log says now: the escalation rule's state and the newest run."""

    state: EscalationState
    run: str = ""
    started: RunStarted | None = None
    ended: RunEnded | None = None  # the run's run_ended, if it ended
    config: dict[str, Any] = {}  # the config in force


def _read(log: EventLog) -> _Now:
    from swarmlog.escalation import levels

    state = levels.EMPTY
    started: RunStarted | None = None
    ended: RunEnded | None = None
    config: dict[str, Any] = {}
    for event in log.read():
        if isinstance(event, RunStarted):
            started, ended = event, None
        elif isinstance(event, RunEnded):
            ended = event
        elif isinstance(event, ConfigLoaded):
            config = event.config
        state = levels.apply(state, event)
    run = started.run if started else ""
    return _Now(state=state, run=run, started=started, ended=ended, config=config)


def _gone(now: _Now) -> str:
    """Why the open run's supervisor is known to be gone (as ``watch`` says it), else ""."""
    from swarmlog.state.model import SwarmState, Team
    from swarmlog.watch import View, supervisor_gone

    if now.started is None or now.ended is not None:
        return ""
    view = View(swarm=SwarmState(team=Team(run=now.run)), started=now.started)
    return supervisor_gone(view)


def _no_run(now: _Now) -> str:
    """Why no run is in progress, else "" (the run is open in the log)."""
    if now.started is None:
        return "the log has no run"
    if now.ended is not None:
        return f"run {now.run} already ended ({now.ended.outcome or 'ended'})"
    return ""


def _append(log: EventLog, args: argparse.Namespace, now: _Now, command: str, target: str) -> int:
    text = args.text
    cmd = HumanCommand(command=command, target=target, text=text, run=now.run, actor="human")
    no_run, gone = _no_run(now), _gone(now)
    stored = log.append([cmd])
    seq = stored[0].seq
    if command == "abort" and gone:
        stored += _end_stopped_run(log, now, stored[0], gone)
    what = f"{command} {target}".rstrip()
    if no_run:  # only ack comes here: pause, resume and abort are refused without a run
        state = "none" if now.started is None else "ended"
        said = f"{no_run}, so nothing acts on it beyond the record"
    elif gone and command == "abort":
        state = "stopped"
        said = (
            f"{gone}, so the run ends here (run_ended at seq {stored[-1].seq}); start a new one "
            "with 'swarmlog run GOAL'"
        )
    elif gone:
        state = "stopped"
        said = f"{gone}, so nothing acts on it until 'swarmlog run --resume' continues the run"
    else:
        state, said = "open", "the team obeys when its monitor reads it"
    if wants_json(args):
        emit_json(
            {"seq": seq, "command": command, "target": target, "run": now.run, "recorded": True,
             "run_state": state}
        )  # fmt: skip
    else:
        print(f"{seq} {what}: recorded; {said}")
    return 0


def _end_stopped_run(log: EventLog, now: _Now, cmd: Event, gone: str) -> list[Event]:
    """Do for an abort what the stopped run's monitor and supervisor no longer can.

    The monitor's reaction (the level-4 escalation and its alert) comes from the same rule, so a
    monitor folding the log later derives the very same events (no-ops then); run_ended lets a new
    run start.
    """
    from swarmlog.escalation import levels
    from swarmlog.escalation.settings import DEFAULT_ESCALATION, night_settings

    try:
        settings = night_settings(now.config)
    except SwarmlogError:
        settings = DEFAULT_ESCALATION
    reactions = [replace(e, actor="human") for e in levels.escalate(now.state, cmd, settings)]
    why = f"aborted by the human while no supervisor was running ({gone})"
    text = getattr(cmd, "text", "")
    reason = f"{why}: {text}" if text else why
    end = RunEnded(outcome="aborted", reason=reason, run=now.run, actor="human")
    return log.append([*reactions, end])


def _unchanged(args: argparse.Namespace, now: _Now, command: str, target: str, why: str) -> int:
    if wants_json(args):
        emit_json(
            {"seq": None, "command": command, "target": target, "run": now.run,
             "recorded": False, "why": why}
        )  # fmt: skip
    else:
        print(f"{why}; nothing recorded")
    return 0


def _already(state: EscalationState, target: str) -> str:
    """Why ``ack TARGET`` would change nothing, else ""."""
    from swarmlog.escalation import levels

    cmd = HumanCommand(command="ack", target=target, actor="human")
    if levels.apply(state, cmd) != state:
        return ""
    alert = state.alerts.get(target)
    if alert is not None:
        return f"{target} is already acknowledged (by {alert.closed_by} at seq {alert.closed_seq})"
    if target == "all":
        return "nothing to acknowledge: no escalation is open and every alert is acknowledged"
    return f"{target} is no longer open and none of its alerts waits for an acknowledgement"


def cmd_ack(args: argparse.Namespace) -> int:
    log = open_log(args)
    try:
        return _ack(log, args)
    finally:
        log.close()


def _canonical_id(typed: str) -> str:
    """An id as the log writes it: 'a3 ' -> 'A3', 'e2' -> 'E2', 'ALL' -> 'all'."""
    text = typed.strip()
    if text.lower() == "all":
        return "all"
    if len(text) > 1 and text[0] in "aAeE" and text[1:].isdigit():
        return text.upper()
    return text


def _ack(log: EventLog, args: argparse.Namespace) -> int:
    now = _read(log)
    state = now.state
    target = _canonical_id(args.id)
    known = (
        target == "all"
        or target in state.alerts
        or target in state.open
        or any(a.escalation_id == target for a in state.alerts.values())
    )
    if not known:
        open_ids = sorted(state.open) + sorted(
            a.alert_id for a in state.alerts.values() if not a.acked
        )
        hint = f"open: {', '.join(open_ids)}" if open_ids else "nothing is open"
        raise UnknownAlert(
            f"no alert or escalation {target!r} in the log ({hint}); run 'swarmlog alerts'"
        )
    why = _already(state, target)
    if why:
        return _unchanged(args, now, "ack", target, why)
    return _append(log, args, now, "ack", target)


def cmd_command(args: argparse.Namespace) -> int:
    log = open_log(args)
    try:
        return _command(log, args, args.command_name)
    finally:
        log.close()


def _command(log: EventLog, args: argparse.Namespace, command: str) -> int:
    now = _read(log)
    no_run = _no_run(now)
    if no_run:
        hint = "start one with 'swarmlog run GOAL'"
        if command == "resume" and now.ended is not None:
            hint = "start a new one with 'swarmlog run GOAL'"
        raise NothingToDo(f"nothing to {command}: {no_run}; {hint}")
    return _append(log, args, now, command, "")


def cmd_alerts(args: argparse.Namespace) -> int:
    log = open_log(args)
    try:
        state = _read(log).state
    finally:
        log.close()
    alerts = sorted(state.alerts.values(), key=lambda a: (a.seq, a.alert_id), reverse=True)
    if args.open:
        alerts = [a for a in alerts if not a.acked]
    if wants_json(args):
        for a in alerts:
            emit_json(a)
        return 0
    if not alerts:
        print("no open alerts" if args.open else "no alerts")
    for a in alerts:
        closed = f" by {plain_line(a.closed_by)}" if a.closed_by else ""
        print(
            f"{plain_line(a.alert_id):<6} L{a.level} {a.status + closed:<16} {iso(a.ts)} "
            f"{plain_line(a.rule):<18} {plain_line(a.title, 300)}"
        )
    from swarmlog.escalation.levels import team_directive

    directive = team_directive(state)
    print(f"team: {directive} (level {state.level})")
    return 0
