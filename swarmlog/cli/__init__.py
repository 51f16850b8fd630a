"""The ``swarmlog`` command line: argparse front end over the library.

Every command takes ``--dir`` (the workspace) and ``--json``; exit codes follow DESIGN.md §9:
0 success, 1 an explained error, 2 a usage error, 3 an optimistic-concurrency conflict.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from swarmlog.cli import (
    doctorcmd,
    humancmds,
    initcmd,
    logcmds,
    rendercmds,
    routecmds,
    runcmds,
    watchcmd,
)
from swarmlog.cli.common import COMMON, CommandModule
from swarmlog.errors import SwarmlogError

__all__ = ["COMMANDS", "build_parser", "main"]

# Every process of a run (supervisor, scheduler, monitor, renderer, each agent) and every operator
# command imports this package, so the command modules import only what their parsers need
# (argparse, cli.common, errors, events, swarmlog.defaults) at the top; the heavy modules they
# call into (config/pydantic, render/jinja2, hardware/NVML, doctor, escalation, …) are imported
# inside the cmd_* function that runs. tests/test_cli_startup.py keeps it that way.
#
# Each module adds its sub-commands; order here is the order in --help.
COMMANDS: list[CommandModule] = [
    initcmd,
    runcmds,
    logcmds,
    rendercmds,
    humancmds,
    routecmds,
    doctorcmd,
    watchcmd,
]


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one stderr line, like every other error
    (DESIGN.md §9): what is wrong, the value, and where the help is; exit 2. Sub-command parsers
    are of this class too (``add_subparsers`` makes them so)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"swarmlog: error: {message}; see '{self.prog} --help'\n")


def _innermost(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> argparse.ArgumentParser:
    """The (sub-)command parser that ``args`` went through, for its name in an error."""
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        name = getattr(args, subs[0].dest, None) if subs else None
        if name is None or name not in subs[0].choices:
            return parser
        parser = subs[0].choices[name]


def build_parser() -> argparse.ArgumentParser:
    """Return the full parser with every sub-command registered."""
    parser: argparse.ArgumentParser = _Parser(
        prog="swarmlog",
        description="Shared memory and dispatcher for an overnight team of LLM agents. "
        "Everything is an event in one append-only log; everything you read is rendered from it.",
        epilog="Example: swarmlog init && swarmlog note 'starting the night' && swarmlog log",
        parents=[COMMON],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code."""
    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:  # named by the command they were given to, not by 'swarmlog'
            _innermost(parser, args).error(f"unrecognized arguments: {' '.join(extras)}")
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    try:
        code: int = args.func(args)
        return code
    except SwarmlogError as exc:
        print(f"swarmlog: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `swarmlog log | head`
        return 0
