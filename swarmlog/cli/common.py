"""Pieces every sub-command shares: common options, the workspace, output helpers."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from typing import Any, Protocol

import msgspec

from swarmlog.log import FileLog
from swarmlog.workspace import Workspace, resolve_workspace

__all__ = [
    "COMMON",
    "CommandModule",
    "actor_identity",
    "add_command",
    "emit_json",
    "iso",
    "open_log",
    "wants_json",
    "workspace",
]

COMMON = argparse.ArgumentParser(add_help=False)
COMMON.add_argument(
    "--dir",
    default=argparse.SUPPRESS,
    help="workspace folder (default: $SWARMLOG_HOME, else the current directory)",
)
COMMON.add_argument(
    "--json",
    action="store_true",
    default=argparse.SUPPRESS,
    help="print one JSON object per line instead of text",
)


class CommandModule(Protocol):
    """A module that contributes sub-commands."""

    def register(self, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None: ...


def add_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    example: str,
    description: str = "",
) -> argparse.ArgumentParser:
    """Add a sub-command whose help ends with a one-line example."""
    return sub.add_parser(
        name,
        help=summary,
        description=description or summary,
        epilog=f"Example: {example}",
        parents=[COMMON],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def workspace(args: argparse.Namespace) -> Workspace:
    return resolve_workspace(getattr(args, "dir", None))


def open_log(args: argparse.Namespace, *, sync: str | None = None) -> FileLog:
    """Open the workspace's file log; it must exist (``swarmlog init`` creates it)."""
    ws = workspace(args)
    return FileLog(ws.events, sync=sync or "always", create=False)  # type: ignore[arg-type]


def actor_identity() -> str:
    """Who is appending: the agent identity a supervisor gave this process, else ``human``."""
    return os.environ.get("SWARMLOG_AGENT") or "human"


def wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def emit_json(obj: Any) -> None:
    sys.stdout.write(msgspec.json.encode(obj).decode() + "\n")
    sys.stdout.flush()


def iso(ts: float) -> str:
    """Format event time as UTC ISO 8601 with seconds."""
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
