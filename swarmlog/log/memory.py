"""An in-memory event log for tests and one-process simulations; the file log's contract."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Protocol

import msgspec

from swarmlog.errors import SeqConflict
from swarmlog.events import ENCODER, Event, EventBase
from swarmlog.log.framing import check_storable
from swarmlog.log.protocol import RepairReport, VerifyReport

__all__ = ["MemoryLog", "MemoryReader"]


class MemoryLog:
    """A list of events behind a lock, with the file log's append semantics."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._events: list[Event] = []
        self._keys: dict[str, Event] = {}
        self._cond = threading.Condition()
        self._clock = clock

    def append(
        self,
        events: Sequence[EventBase],
        *,
        expected_seq: int | None = None,
        sync: object = None,
    ) -> list[Event]:
        """Append a batch atomically; known idempotency keys return the stored event."""
        with self._cond:
            last = len(self._events)
            if expected_seq is not None and expected_seq != last:
                raise SeqConflict(expected_seq, last)
            check_storable(events, [ENCODER.encode(ev) for ev in events])  # as the file log
            now = self._clock()
            out: list[Event] = []
            for ev in events:
                if ev.key is not None and ev.key in self._keys:
                    out.append(self._keys[ev.key])
                    continue
                stored: Event = msgspec.structs.replace(  # type: ignore[assignment]
                    ev, seq=len(self._events) + 1, ts=ev.ts or now
                )
                self._events.append(stored)
                if stored.key is not None:
                    self._keys[stored.key] = stored
                out.append(stored)
            self._cond.notify_all()
            return out

    def last_seq(self) -> int:
        """Return the seq of the last event (0 for an empty log)."""
        with self._cond:
            return len(self._events)

    def read(self, after: int = 0) -> Iterator[Event]:
        """Yield every event with seq > ``after``."""
        with self._cond:
            snapshot = self._events[after:]
        yield from snapshot

    def reader(self, after: int = 0) -> MemoryReader:
        """Return a cursor that yields each event after ``after`` once, in order."""
        return MemoryReader(self, after)

    def wait(self, after: int, timeout: float) -> bool:
        """Block until the log holds a seq > ``after`` or ``timeout`` passes."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._events) > after, timeout)

    def subscribe(
        self, after: int = 0, *, stop: threading.Event | None = None, poll_s: float = 0.5
    ) -> Iterator[Event]:
        """Yield records after ``after`` until ``stop`` is set."""
        reader = self.reader(after)
        while stop is None or not stop.is_set():
            yield from reader.poll()
            self.wait(reader.position, poll_s)

    async def asubscribe(
        self, after: int = 0, *, stop: _AsyncStop | None = None, step_ms: int = 2
    ) -> AsyncIterator[Event]:
        """Async twin of ``subscribe``: polls every ``step_ms`` until ``stop`` is set."""
        reader = self.reader(after)
        while True:
            for event in reader.poll():
                yield event
            if stop is not None and stop.is_set():
                return
            await asyncio.sleep(step_ms / 1000)

    def verify(self) -> VerifyReport:
        """Report the log's shape; memory cannot be damaged, so there are never problems."""
        with self._cond:
            return VerifyReport(segments=1, records=len(self._events), last_seq=len(self._events))

    def repair(self) -> RepairReport:
        """Do nothing: an in-memory log has no torn tail."""
        return RepairReport(removed_bytes=0, saved_to="", segment="")

    def close(self) -> None:
        """Do nothing; present for the ``EventLog`` protocol."""


class _AsyncStop(Protocol):  # asyncio.Event / anyio.Event
    def is_set(self) -> bool: ...


class MemoryReader:
    """A cursor over a ``MemoryLog``."""

    def __init__(self, log: MemoryLog, after: int) -> None:
        self._log = log
        self._pos = after

    @property
    def position(self) -> int:
        return self._pos

    def poll(self) -> list[Event]:
        batch = list(self._log.read(self._pos))
        if batch:
            self._pos = batch[-1].seq
        return batch
