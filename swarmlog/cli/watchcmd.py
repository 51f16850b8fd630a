"""``swarmlog watch``: the live view of the night, refreshed from the log."""

from __future__ import annotations

import argparse

from swarmlog.cli.common import add_command, open_log, positive_seconds, wants_json, workspace

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "watch",
        "live view: phase and elapsed time, agents, calls per model, GPU memory, alerts",
        "swarmlog watch --interval 5",
        description="Redraw a live view folded from the log: the phase and its elapsed time "
        "against the expected duration, each agent's status, task and trust, in-flight and "
        "queued calls per model with latency, GPU memory, open alerts and the team directive. "
        "On a terminal the screen is redrawn (plain ANSI, fine over ssh); piped, it prints one "
        "summary line per interval. It exits when the run ends, or on Ctrl-C.",
    )
    p.add_argument(
        "--interval",
        type=positive_seconds,
        default=2.0,
        help="seconds between refreshes (default 2)",
    )
    p.add_argument("--once", action="store_true", help="draw once and exit")
    p.set_defaults(func=cmd_watch)


def cmd_watch(args: argparse.Namespace) -> int:
    from swarmlog.watch import watch

    return watch(
        workspace(args),
        log=open_log(args),
        interval_s=args.interval,
        once=args.once,
        as_json=wants_json(args),
    )
