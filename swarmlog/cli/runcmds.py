"""Sub-commands that run the team: run, agent, scheduler, monitor."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from swarmlog.cli.common import add_command, log_target, open_log, positive_seconds, workspace
from swarmlog.cli.initcmd import init_workspace
from swarmlog.defaults import ROLES
from swarmlog.errors import ConfigError, SwarmlogError, UsageError

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "run",
        "start the team on a goal (or --resume a run after a crash)",
        "swarmlog run --sim demo",
        description="Start the scheduler, one process per agent role, the monitor and the "
        "renderer, and supervise them until the run ends. Progress is printed as it happens; "
        "the Markdown state is in memory/ and alerts/.",
    )
    p.add_argument(
        "goal",
        nargs="?",
        help="what the team should achieve tonight (default: with --sim, the scenario's goal; "
        "with --resume, the open run's)",
    )
    p.add_argument(
        "--sim",
        metavar="SCENARIO",
        help="run on the built-in simulated model servers (demo, outage, stuck, conflict, "
        "emergency; default: the servers in swarmlog.toml, or with --resume the open run's "
        "scenario)",
    )
    p.add_argument("--resume", action="store_true", help="continue the open run from the log")
    p.add_argument(
        "--config", metavar="FILE", help="config file (default: swarmlog.toml in the workspace)"
    )
    p.add_argument(
        "--time-scale",
        type=positive_seconds,
        default=0.05,
        metavar="SECONDS",
        help="with --sim: real seconds per simulated second (default 0.05)",
    )
    p.add_argument(
        "--workers",
        action="append",
        default=[],
        metavar="ROLE=N",
        help="run N processes for a role (repeatable), e.g. builder=2; overrides the role's "
        "[agents.ROLE] count in swarmlog.toml (default: that count, else 1)",
    )
    p.add_argument(
        "--child-dirs",
        metavar="DIR",
        help="start the scheduler, each agent and the monitor in its own workspace DIR/NAME, "
        "sharing nothing but the log (a rehearsal of a team spread over hosts; use a nats:// log; "
        "default: every process in the workspace)",
    )
    p.set_defaults(func=cmd_run)

    p = add_command(
        sub,
        "agent",
        "run one stateless agent process (started by 'swarmlog run')",
        "swarmlog agent --role builder",
    )
    p.add_argument("--role", required=True, choices=ROLES, metavar="ROLE", help=", ".join(ROLES))
    p.add_argument("--id", help="agent identity (default: the role)")
    p.set_defaults(func=cmd_agent)

    p = add_command(
        sub,
        "scheduler",
        "run the scheduler process (started by 'swarmlog run')",
        "swarmlog scheduler",
    )
    p.set_defaults(func=cmd_scheduler)

    p = add_command(
        sub,
        "monitor",
        "run the monitor: hardware and server samples, detectors, escalation, alert delivery",
        "swarmlog monitor",
    )
    p.add_argument(
        "--interval",
        type=positive_seconds,
        default=5.0,
        metavar="SECONDS",
        help="seconds between samples (default 5)",
    )
    p.set_defaults(func=cmd_monitor)


def _workers(specs: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for spec in specs:
        role, _, count = spec.partition("=")
        if not count.isdigit() or int(count) < 1:
            raise UsageError(f"--workers {spec!r}: expected ROLE=N with N >= 1, e.g. builder=2")
        if role not in ROLES:
            raise UsageError(f"--workers {spec!r}: no role {role!r}; roles: {', '.join(ROLES)}")
        out[role] = int(count)
    return out


def _scenario_of_open_run(args: argparse.Namespace) -> str:
    """The simulated scenario the open run was started on ('' if none, or no open run)."""
    from swarmlog.runtime.context import project_context

    try:
        log = open_log(args)
    except SwarmlogError:
        return ""  # no log yet: the supervisor says there is nothing to resume
    try:
        ctx = project_context(log.read())
    finally:
        log.close()
    return ctx.scenario if ctx.run and not ctx.ended else ""


def cmd_run(args: argparse.Namespace) -> int:
    from swarmlog.config import load_config, night_problems, parse_config
    from swarmlog.runtime.supervisor import Supervisor

    ws = workspace(args)
    workers = _workers(args.workers)  # usage errors before anything starts
    if args.resume and not args.sim:
        args.sim = _scenario_of_open_run(args)
        if args.sim:
            print(
                f"the open run was started with --sim {args.sim}: resuming it on the same "
                "simulated servers",
                flush=True,
            )
    init_workspace(ws)
    fleet = None
    scenario_name = ""
    if args.sim:
        from swarmlog.sim.scenarios import get_scenario
        from swarmlog.sim.scenarios.launch import start_fleet

        scenario = get_scenario(args.sim)
        scenario_name = scenario.name
        # The workspace's own config is read (and refused) before any server starts.
        own, counts = _own_sections(Path(args.config) if args.config else ws.config)
        fleet = start_fleet(scenario, time_scale=args.time_scale)
        agents = {
            role: {**table, **({"count": counts[role]} if role in counts else {})}
            for role, table in fleet.config.get("agents", {}).items()
        }
        config_dict = parse_config(
            {**fleet.config, "agents": agents, **own}, where=f"scenario {scenario.name}"
        ).to_event_dict()
        goal = args.goal or scenario.goal
        config_path = f"(simulated: {scenario.name})"
        print(
            f"simulated servers for scenario {scenario.name!r}: "
            + ", ".join(f"{n} {s.url}" for n, s in sorted(fleet.servers.items())),
            flush=True,
        )
    else:
        path = Path(args.config) if args.config else ws.config
        cfg = load_config(path)
        config_dict = cfg.to_event_dict()
        goal = args.goal or ""
        config_path = str(path)
        if not goal and not args.resume:
            raise UsageError("run needs a GOAL (or --resume, or --sim SCENARIO)")
    try:
        problems = night_problems(config_dict, config_path)
        if problems:
            raise ConfigError("; ".join(problems))
        supervisor = Supervisor(
            ws,
            goal=goal,
            config=config_dict,
            config_path=config_path,
            scenario=scenario_name,
            resume=args.resume,
            workers=workers,
            log_at=log_target(args),
            child_root=Path(args.child_dirs) if args.child_dirs else None,
        )
        outcome = supervisor.run()
    finally:
        if fleet is not None:
            fleet.stop()
    _final_render(ws, log_target(args))
    read = f"Read {ws.memory / 'team-state.md'}, {ws.memory / 'report.md'} and {ws.alerts}/"
    if outcome == "interrupted":
        by = supervisor.stopped_by
        what = f"by {signal.Signals(by).name}" if by else "before it ended"
        print(f"run interrupted {what}; continue it with 'swarmlog run --resume'. {read}")
        # As a shell reports a command a signal ended: 130 for Ctrl-C, 143 for SIGTERM.
        return 128 + by if by else 1
    print(f"run {outcome}. {read}", flush=True)
    if outcome in _WHAT_NEXT:
        # Exit 1, not 0: a script running the night unattended must tell it from a completed one.
        why = supervisor.end_reason or outcome
        raise SwarmlogError(
            f"run {supervisor.run_id} {outcome} ({why}); its state is kept: read 'swarmlog report' "
            f"{_WHAT_NEXT[outcome].format(alerts=ws.alerts)}"
        )
    return 0


# What the one error line of a night that did not complete says after 'swarmlog report'.
_WHAT_NEXT = {
    "aborted": "and {alerts}/, then start a new night with 'swarmlog run GOAL' (an aborted run "
    "cannot be resumed)",
    "failed": "for the tasks that failed and their last errors, then start a new night with "
    "'swarmlog run GOAL'",
}


# Sections of the workspace's own swarmlog.toml that a simulated run keeps (the models and agents
# come from the scenario): where alerts go, when to escalate, the team's rules, the budget. Of
# [agents.ROLE] it keeps 'count', how many processes run the role.
_KEPT_IN_SIM = ("alerts", "escalation", "team")


def _own_sections(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """The sections a simulated run keeps, and each role's ``count`` where it is not 1."""
    from swarmlog.config import load_config

    if not path.exists():
        return {}, {}
    cfg = load_config(path)
    kept = {name: cfg.section(name) for name in _KEPT_IN_SIM if cfg.section(name)}
    return kept, {role: agent.count for role, agent in cfg.agents.items() if agent.count != 1}


def _final_render(ws: Any, log_at: str) -> None:
    """Bring the Markdown up to the last event (the renderer may have stopped a moment early).

    A failure is shown on one line and the run's own outcome is still printed after it.
    """
    from swarmlog.log.select import open_log as open_target
    from swarmlog.render import make_environment
    from swarmlog.replay import render_once

    try:
        log = open_target(log_at, create=False)
        _state, _changed, reasons = render_once(ws, make_environment(ws), log=log)
    except SwarmlogError as exc:
        print(f"swarmlog: error: {exc}", file=sys.stderr)
        return
    for reason in reasons:
        print(f"swarmlog: warning: {reason}", file=sys.stderr)


def cmd_agent(args: argparse.Namespace) -> int:
    from swarmlog.runtime.process import serve_agent

    serve_agent(workspace(args), args.role, args.id or args.role, log_at=getattr(args, "log", None))
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    from swarmlog.runtime.process import serve_scheduler

    outcome = serve_scheduler(workspace(args), log_at=getattr(args, "log", None))
    print(f"scheduler: run {outcome or 'stopped'}", file=sys.stderr)
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    from swarmlog.runtime.monitor import serve_monitor

    serve_monitor(workspace(args), interval_s=args.interval, log_at=getattr(args, "log", None))
    return 0
