"""The contract every event-log backend keeps (a folder of files, NATS JetStream, memory)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, runtime_checkable

import msgspec

from swarmlog.events import Event, EventBase

__all__ = [
    "AppendNotifier",
    "EventLog",
    "Fingerprinted",
    "Problem",
    "Reader",
    "RepairReport",
    "SegmentMark",
    "VerifyReport",
]


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


class SegmentMark(msgspec.Struct, frozen=True, kw_only=True):
    """What a snapshot knew of one file-log segment: its first ``length`` bytes had ``crc``.

    ``crc`` is zlib's CRC-32 of those bytes. For a segment that was whole and sealed when it was
    hashed, its inode, mtime and ctime then are kept too: while they and its size are unchanged
    nothing was written to it through the file system since (a write, a ``chmod`` or a
    ``touch`` sets ctime to the present), so the bytes need not be read again.
    """

    first: int  # the segment's first seq: its file name
    length: int
    crc: int
    ino: int = 0  # 0: not whole and sealed when hashed; compare the bytes
    mtime_ns: int = 0
    ctime_ns: int = 0


@runtime_checkable
class Fingerprinted(Protocol):
    """A log whose bytes a snapshot can mark, so a snapshot never hides damage before it.

    ``fingerprint(seq)`` returns marks of every byte holding records up to ``seq``;
    ``check_prefix(seq, marks)`` raises ``LogCorrupt`` (file and line) where those bytes were
    damaged since, and returns a reason ("" when they are as marked) when they differ but every
    record still checks: not the log the snapshot was folded from.
    """

    def fingerprint(self, seq: int) -> tuple[SegmentMark, ...]: ...

    def check_prefix(self, seq: int, marks: Sequence[SegmentMark]) -> str: ...


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
