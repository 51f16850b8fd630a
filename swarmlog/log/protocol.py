"""The contract every event-log backend keeps (a folder of files, NATS JetStream, memory)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, runtime_checkable

import msgspec

from swarmlog.events import Event, EventBase

__all__ = ["AppendNotifier", "EventLog", "Problem", "Reader", "RepairReport", "VerifyReport"]


class Problem(msgspec.Struct, frozen=True):
    """One damaged record: where it is and what is wrong with it."""

    path: str
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.problem}"


class VerifyReport(msgspec.Struct, frozen=True, kw_only=True):
    """What ``verify`` found: counts, the last good seq, a torn tail, every problem."""

    segments: int
    records: int
    last_seq: int
    torn_tail_bytes: int = 0
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


class RepairReport(msgspec.Struct, frozen=True, kw_only=True):
    """What ``repair`` removed, and where it kept a copy."""

    removed_bytes: int
    saved_to: str
    segment: str


class Reader(Protocol):
    """A cursor: each ``poll`` returns records that appeared since the previous one."""

    def poll(self) -> list[Event]: ...

    @property
    def position(self) -> int: ...


class EventLog(Protocol):
    """An append-only, totally ordered log of events with dense seqs starting at 1."""

    def append(
        self,
        events: Sequence[EventBase],
        *,
        expected_seq: int | None = None,
    ) -> list[Event]: ...

    def last_seq(self) -> int: ...

    def read(self, after: int = 0) -> Iterator[Event]: ...

    def reader(self, after: int = 0) -> Reader: ...

    def verify(self) -> VerifyReport: ...

    def close(self) -> None: ...


@runtime_checkable
class AppendNotifier(Protocol):
    """A log that rings a doorbell when it grows (``NatsLog``; the file log is watched instead)."""

    def on_append(self, ring: Callable[[], None]) -> Callable[[], None]: ...
