"""Pieces every sub-command shares: common options, the workspace, output helpers."""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import sys
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from swarmlog.errors import SwarmlogError, UsageError
from swarmlog.workspace import Workspace, resolve_workspace

if TYPE_CHECKING:
    from swarmlog.log import FileLog
    from swarmlog.log.nats import NatsLog

__all__ = [
    "COMMON",
    "CommandModule",
    "actor_identity",
    "add_command",
    "emit_json",
    "iso",
    "log_target",
    "non_negative_number",
    "open_log",
    "positive_int",
    "positive_seconds",
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
    "--log",
    default=argparse.SUPPRESS,
    metavar="URL_OR_PATH",
    help="the event log: nats://HOST:PORT[,HOST:PORT]/STREAM[?replicas=N] or an events folder "
    "(default: $SWARMLOG_LOG, else [log] in swarmlog.toml, else <workspace>/memory/events)",
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
    """The workspace: ``--dir``, else ``$SWARMLOG_HOME``, else the current directory. A folder
    that does not exist yet is fine (``init`` makes it); a file there is refused, naming where
    the path came from."""
    explicit = getattr(args, "dir", None)
    ws = resolve_workspace(explicit)
    if ws.root.exists() and not ws.root.is_dir():
        if explicit is not None:
            raise UsageError(
                f"--dir {ws.root} is a file, not a folder; give a folder for the workspace "
                "(it is created if missing)"
            )
        raise SwarmlogError(
            f"SWARMLOG_HOME={ws.root} is a file, not a folder; point it at the workspace "
            "folder, or unset it and pass --dir"
        )
    return ws


def log_target(args: argparse.Namespace) -> str:
    """Return the address of the selected log: --log, $SWARMLOG_LOG, [log], else the file log."""
    from swarmlog.log.select import resolve_log

    return resolve_log(workspace(args), getattr(args, "log", None))


def open_log(
    args: argparse.Namespace, *, sync: str | None = None, create: bool = False
) -> FileLog | NatsLog:
    """Open the selected log; unless ``create``, it must exist (``init`` and ``run`` make it)."""
    from swarmlog.log import FileLog
    from swarmlog.log.select import is_nats_url
    from swarmlog.log.select import open_log as open_target

    target = log_target(args)
    if is_nats_url(target):
        return open_target(target, create=create)
    if not create and not os.path.isdir(target):
        _named_no_log(args)
    return FileLog(target, sync=sync or "always", create=create)  # type: ignore[arg-type]


def _named_no_log(args: argparse.Namespace) -> None:
    """Refuse a ``--log`` or ``$SWARMLOG_LOG`` that names no log, naming which one; the
    workspace's own log (missing before ``init``) is FileLog's to explain."""
    given = getattr(args, "log", None)
    source, value = (
        ("--log ", given) if given else ("SWARMLOG_LOG=", os.environ.get("SWARMLOG_LOG"))
    )
    if not value:
        return
    what = "a URL but not nats://" if "://" in value else "not an events folder"
    text = (
        f"{source}{value!r} names no event log ({what}); give a workspace's memory/events "
        "folder or nats://HOST:PORT/STREAM"
    )
    raise UsageError(text) if given else SwarmlogError(text)


def actor_identity() -> str:
    """Who is appending: the agent identity a supervisor gave this process, else ``human``."""
    return os.environ.get("SWARMLOG_AGENT") or "human"


def wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def emit_json(obj: Any) -> None:
    sys.stdout.write(msgspec.json.encode(obj).decode() + "\n")
    sys.stdout.flush()


def iso(ts: float) -> str:
    """Format event time as UTC ISO 8601 with seconds; a time no date can hold (a huge, infinite
    or NaN ``ts`` already in a log) is printed as the raw number, padded to the same width."""
    try:
        return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError, OSError):
        return f"{ts!r:<20}"


def _float_or_nan(text: str) -> float:
    """``text`` as a float, NaN when it is not a number (so every range check below fails)."""
    try:
        return float(text)
    except ValueError:
        return math.nan


def positive_seconds(text: str) -> float:
    """An argparse ``type``: a finite number of seconds above 0 (a usage error otherwise)."""
    value = _float_or_nan(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def non_negative_number(text: str) -> float:
    """An argparse ``type``: a finite number, 0 or more (a usage error otherwise)."""
    value = _float_or_nan(text)
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number, 0 or more")
    return value


def positive_int(text: str) -> int:
    """An argparse ``type``: a whole number, 1 or more (a usage error otherwise)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number, 1 or more")
    return value
