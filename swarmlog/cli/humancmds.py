"""The human's side of escalation: ``alerts``, ``ack``, ``pause``, ``resume``, ``abort``.

Each command except ``alerts`` appends one ``human_command`` event (actor ``human``); the team
obeys it as soon as its monitor reads the event (``levels.team_directive``), whichever process
appended it.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from swarmlog.cli.common import add_command, emit_json, iso, open_log, wants_json
from swarmlog.errors import SwarmlogError
from swarmlog.events import HumanCommand, RunStarted

if TYPE_CHECKING:
    from swarmlog.escalation.levels import EscalationState
    from swarmlog.log import EventLog

__all__ = ["UnknownAlert", "register"]


class UnknownAlert(SwarmlogError):
    """Raised when ``ack`` names an alert or escalation the log does not hold."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "alerts",
        "list open and past alerts, newest first",
        "swarmlog alerts --open",
        description="List the alerts raised in this workspace's log: their id, level, status "
        "(open, acked, resolved), time, rule and title.",
    )
    p.add_argument("--open", action="store_true", help="only alerts still open")
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


def _current_run(log: EventLog) -> tuple[str, EscalationState]:
    from swarmlog.escalation import levels

    run = ""
    state = levels.EMPTY
    for event in log.read():
        if isinstance(event, RunStarted):
            run = event.run
        state = levels.apply(state, event)
    return run, state


def _append(log: EventLog, args: argparse.Namespace, command: str, target: str, text: str) -> int:
    run, _ = _current_run(log)
    stored = log.append(
        [HumanCommand(command=command, target=target, text=text, run=run, actor="human")]
    )
    event = stored[0]
    if wants_json(args):
        emit_json({"seq": event.seq, "command": command, "target": target, "run": run})
    else:
        what = f"{command} {target}".rstrip()
        print(f"{event.seq} {what}: recorded; the team obeys when its monitor reads it")
    return 0


def cmd_ack(args: argparse.Namespace) -> int:
    log = open_log(args)
    _, state = _current_run(log)
    target = args.id
    known = (
        target == "all"
        or target in state.alerts
        or target in state.open
        or any(a.escalation_id == target for a in state.alerts.values())
    )
    if not known:
        open_ids = sorted(state.open) + sorted(
            a.alert_id for a in state.alerts.values() if a.status == "open"
        )
        hint = f"open: {', '.join(open_ids)}" if open_ids else "nothing is open"
        raise UnknownAlert(
            f"no alert or escalation {target!r} in the log ({hint}); run 'swarmlog alerts'"
        )
    return _append(log, args, "ack", target, args.text)


def cmd_command(args: argparse.Namespace) -> int:
    return _append(open_log(args), args, args.command_name, "", args.text)


def cmd_alerts(args: argparse.Namespace) -> int:
    _, state = _current_run(open_log(args))
    alerts = sorted(state.alerts.values(), key=lambda a: (a.seq, a.alert_id), reverse=True)
    if args.open:
        alerts = [a for a in alerts if a.status == "open"]
    if wants_json(args):
        for a in alerts:
            emit_json(a)
        return 0
    if not alerts:
        print("no open alerts" if args.open else "no alerts")
    for a in alerts:
        closed = f" by {a.closed_by}" if a.closed_by else ""
        print(
            f"{a.alert_id:<6} L{a.level} {a.status + closed:<16} {iso(a.ts)} {a.rule:<18} {a.title}"
        )
    from swarmlog.escalation.levels import team_directive

    directive = team_directive(state)
    print(f"team: {directive} (level {state.level})")
    return 0
