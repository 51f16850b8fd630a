"""The exception hierarchy: every error swarmlog raises on purpose is a ``SwarmlogError``.

Messages say what happened, the offending value, and what to do, on one line.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

__all__ = [
    "MISSING",
    "ConfigError",
    "EventDecodeError",
    "LogCorrupt",
    "LogError",
    "NoRouteAvailable",
    "ProtocolViolation",
    "ProviderError",
    "QueueFull",
    "RouteError",
    "SeqConflict",
    "SwarmlogError",
    "TemplateError",
    "UsageError",
    "did_you_mean",
    "path_steps",
    "value_at",
]


class SwarmlogError(Exception):
    """Raised for any failure swarmlog explains to the user; the CLI prints it and exits 1."""

    exit_code = 1


class UsageError(SwarmlogError):
    """Raised when a command is called with arguments that cannot work together."""

    exit_code = 2


class LogError(SwarmlogError):
    """Raised when the event log cannot be read or written (permissions, disk full, missing)."""


class LogCorrupt(LogError):
    """Raised when a record fails its checksum, breaks the dense seq, or does not decode."""

    def __init__(self, path: str, line: int, problem: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        if path.startswith("nats://"):  # a stream has no segment files and nothing to repair
            fix = "restore the stream from a replica or a backup of it"
        else:
            fix = (
                "restore the segment from a copy (git, a backup): 'swarmlog repair' only cuts a "
                "torn tail"
            )
        super().__init__(
            f"{path}:{line}: {problem}; 'swarmlog verify' lists every damaged record; {fix}"
        )


class SeqConflict(LogError):
    """Raised when ``expected_seq`` does not match the log's last seq (optimistic concurrency)."""

    exit_code = 3

    def __init__(self, expected: int, found: int) -> None:
        self.expected = expected
        self.found = found
        super().__init__(
            f"expected the log to end at seq {expected} but it ends at seq {found}; "
            f"re-read the log and retry"
        )


class EventDecodeError(SwarmlogError):
    """Raised when input is not a valid event; names the kind, the field path and the bad value."""


class TemplateError(SwarmlogError):
    """Raised when a Markdown template is missing or fails to render."""


class ConfigError(SwarmlogError):
    """Raised when ``swarmlog.toml`` is missing, unreadable or invalid."""


class RouteError(SwarmlogError):
    """Raised when a task cannot be routed."""


class NoRouteAvailable(RouteError):
    """Raised when no configured model passes the hard filters for a task."""


class QueueFull(RouteError):
    """Raised when the bounded dispatch queue is full: back off instead of piling up."""


class ProviderError(SwarmlogError):
    """Raised when a model server answers with an error or cannot be reached."""

    def __init__(
        self, message: str, *, status: int = 0, retryable: bool = False, retry_after: float = 0.0
    ) -> None:
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(message)


class ProtocolViolation(SwarmlogError):
    """Raised when a message breaks the team's communication topology."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``"; did you mean 'parallel'?"`` for the allowed name closest to a misspelt one,
    or "" when none is close (difflib's ratio of at least 0.6)."""
    near = difflib.get_close_matches(word, [str(c) for c in choices], n=1)
    return f"; did you mean {near[0]!r}?" if near else ""


# The value a msgspec validation error is about, for messages that show it

MISSING: Any = object()  # what value_at returns when the path leads nowhere
_PATH_STEP = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")


def path_steps(path: str) -> list[str | int | None]:
    """Split a msgspec error path (``$.a[0].b``) into field names and list indices; None stands
    for msgspec's ``[...]`` (some key of a dict)."""
    return [
        None if index == "..." else int(index) if index else name
        for name, index in _PATH_STEP.findall(path)
    ]


def value_at(data: Any, path: str) -> Any:
    """Follow a msgspec error path into the data that was validated: the value it names, the
    dict at a ``[...]`` step, or ``MISSING`` when the path leads nowhere."""
    node = data
    for step in path_steps(path):
        if step is None:
            return node
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return MISSING
    return node
