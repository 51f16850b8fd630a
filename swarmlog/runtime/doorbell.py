"""A doorbell on the event log: wakes a loop when the log grows, whatever its backend.

A ``FileLog`` (or a bare folder) is watched with watchfiles (inotify); a log that can notify
(``NatsLog.on_append``: a headers-only JetStream subscription) rings from its own thread; any other
log (``MemoryLog``) never rings, so waits simply time out.

It is only a hint. Readers always read from their own offset, and every wait has a timeout, so a
coalesced or missed notification costs latency, never an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

import watchfiles

from swarmlog.log.file import FileLog
from swarmlog.log.protocol import AppendNotifier, EventLog

__all__ = ["Doorbell", "wakeups"]


def _folder_of(source: Path | EventLog) -> Path | None:
    if isinstance(source, Path):
        return source
    if isinstance(source, FileLog):
        return source.directory
    return None


class Doorbell:
    """``async with Doorbell(log) as bell: await bell.wait(timeout)``; a folder works too."""

    def __init__(self, source: Path | EventLog, *, step_ms: int = 2) -> None:
        self.folder = _folder_of(source)
        self.notifier = (
            source if self.folder is None and isinstance(source, AppendNotifier) else None
        )
        self.step_ms = step_ms
        self._rang = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._cancel: Callable[[], None] | None = None

    async def __aenter__(self) -> Doorbell:
        if self.folder is not None:
            self._task = asyncio.create_task(self._watch(self.folder))
        elif self.notifier is not None:
            loop = asyncio.get_running_loop()

            def ring() -> None:  # called on the log's own thread
                with contextlib.suppress(RuntimeError):  # our loop already closed
                    loop.call_soon_threadsafe(self._rang.set)

            self._cancel = self.notifier.on_append(ring)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._cancel is not None:
            cancel, self._cancel = self._cancel, None
            cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _watch(self, folder: Path) -> None:
        async for _ in watchfiles.awatch(
            folder,
            watch_filter=None,
            debounce=self.step_ms * 4,
            step=self.step_ms,
            stop_event=self._stop,
            rust_timeout=1000,
            yield_on_timeout=False,
        ):
            self._rang.set()

    async def wait(self, timeout: float) -> bool:
        """Wait until the bell rings or ``timeout`` passes; return whether it rang."""
        try:
            await asyncio.wait_for(self._rang.wait(), timeout)
        except TimeoutError:
            return False
        self._rang.clear()
        return True


def wakeups(
    log: EventLog, *, stop: threading.Event, step_ms: int = 5, poll_s: float = 0.5
) -> Iterator[bool]:
    """Yield True after the log grows, False after ``poll_s`` without news, until ``stop`` is set.

    The blocking twin of ``Doorbell`` for threads (``swarmlog render --follow``).
    """
    folder = _folder_of(log)
    if folder is not None:
        for changes in watchfiles.watch(
            folder,
            watch_filter=None,
            debounce=max(step_ms * 4, 4),
            step=step_ms,
            stop_event=stop,
            rust_timeout=int(poll_s * 1000),
            yield_on_timeout=True,
            raise_interrupt=False,
        ):
            yield bool(changes)
        return
    rang = threading.Event()
    cancel = log.on_append(rang.set) if isinstance(log, AppendNotifier) else None
    try:
        quiet_since = time.monotonic()
        while not stop.is_set():
            if rang.wait(min(poll_s, 0.05)):
                rang.clear()
                quiet_since = time.monotonic()
                yield True
            elif time.monotonic() - quiet_since >= poll_s:
                quiet_since = time.monotonic()
                yield False
    finally:
        if cancel is not None:
            cancel()
