"""A doorbell on the event log: wakes a loop when the log grows, whatever its backend.

A ``FileLog`` (or a bare folder) is watched with inotify directly on Linux (the kernel wakes the
loop through ``add_reader``: no polling thread, no debounce), with watchfiles elsewhere; a log that
can notify
(``NatsLog.on_append``: a headers-only JetStream subscription) rings from its own thread; any other
log (``MemoryLog``) never rings, so waits simply time out.

It is only a hint. Readers always read from their own offset, and every wait has a timeout, so a
coalesced or missed notification costs latency, never an event.

An agent process of a file log on Linux has a private bell instead (``agent_bell``): an
abstract-namespace datagram socket named after the log's folder, the agent and its pid, that the
scheduler rings when the agent has work (a task it may claim) or the run ends. Every append would
otherwise wake all seven agents, each to fold an event that almost never concerns it, on a
machine that has two cores for them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import socket
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

import watchfiles

from swarmlog.log.file import FileLog
from swarmlog.log.protocol import AppendNotifier, EventLog

__all__ = ["Doorbell", "Ringer", "agent_bell", "wakeups"]


def _folder_of(source: Path | EventLog) -> Path | None:
    if isinstance(source, Path):
        return source
    if isinstance(source, FileLog):
        return source.directory
    return None


def agent_bell(log: EventLog, agent: str, pid: int) -> bytes | None:
    """The abstract socket an agent process listens on for its private bell, or None where there
    is none (not Linux, or not a file log: those agents follow the log's own doorbell)."""
    folder = _folder_of(log)
    if folder is None or not sys.platform.startswith("linux"):
        return None
    where = zlib.crc32(os.fsencode(os.path.realpath(folder)))
    return f"\0swarmlog-bell:{where:08x}:{agent[:64]}:{pid}".encode()


class Ringer:
    """Rings agents' private bells: one datagram each, never blocking, errors ignored (a bell
    nobody listens on any more, a full queue: the agent is gone or already has a ring pending)."""

    def __init__(self) -> None:
        self._sock: socket.socket | None = None

    def ring(self, address: bytes) -> bool:
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)
        try:
            self._sock.sendto(b"!", address)
        except OSError:
            return False
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class Doorbell:
    """``async with Doorbell(log) as bell: await bell.wait(timeout)``; a folder works too.

    With ``address`` (from ``agent_bell``) it listens on that private bell instead of the log,
    falling back to the log where the socket cannot be bound.
    """

    def __init__(
        self, source: Path | EventLog, *, step_ms: int = 2, address: bytes | None = None
    ) -> None:
        self.folder = _folder_of(source)
        self.address = address
        self._bell: socket.socket | None = None
        self.notifier = (
            source if self.folder is None and isinstance(source, AppendNotifier) else None
        )
        self.step_ms = step_ms
        # Rung since the last wait returned; a waiting ``wait`` parks on ``_waiter``. A plain flag
        # and one future per wait (no Event, no wait_for task): a wake-up costs one loop turn.
        self._rang = False
        self._waiter: asyncio.Future[bool] | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._cancel: Callable[[], None] | None = None
        self._inotify: int | None = None

    async def __aenter__(self) -> Doorbell:
        if self.address is not None:
            self._bell = _bind_bell(self.address)
        if self._bell is not None:
            asyncio.get_running_loop().add_reader(self._bell.fileno(), self._on_bell)
        elif self.folder is not None:
            self._inotify = _inotify_open(self.folder)
            if self._inotify is not None:
                asyncio.get_running_loop().add_reader(self._inotify, self._on_inotify)
            else:
                self._task = asyncio.create_task(self._watch(self.folder))
        elif self.notifier is not None:
            loop = asyncio.get_running_loop()

            def ring() -> None:  # called on the log's own thread
                with contextlib.suppress(RuntimeError):  # our loop already closed
                    loop.call_soon_threadsafe(self._ring)

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
        if self._inotify is not None:
            fd, self._inotify = self._inotify, None
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
        if self._bell is not None:
            bell, self._bell = self._bell, None
            asyncio.get_running_loop().remove_reader(bell.fileno())
            bell.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def _ring(self) -> None:
        self._rang = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    def _on_bell(self) -> None:
        if self._bell is None:
            return
        rang = False
        while True:
            try:
                rang = bool(self._bell.recv(64)) or rang
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                rang = True  # the socket broke: wake the reader, its own offset decides
                break
        if rang:
            self._ring()

    def _on_inotify(self) -> None:
        if self._inotify is not None and _inotify_drain(self._inotify):
            self._ring()

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
            self._ring()

    async def wait(self, timeout: float) -> bool:
        """Wait until the bell rings or ``timeout`` passes; return whether it rang."""
        if not self._rang:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(timeout, _time_out, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        rang, self._rang = self._rang, False
        return rang


def _bind_bell(address: bytes) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    try:
        sock.bind(address)
    except OSError:  # taken (another process with our name and pid?) or not supported
        sock.close()
        return None
    sock.setblocking(False)
    return sock


def _time_out(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


# inotify through libc (Linux): one descriptor per bell, read by the event loop when it is ready.
_IN_MODIFY, _IN_MOVED_TO, _IN_CREATE = 0x2, 0x80, 0x100
_IN_NONBLOCK, _IN_CLOEXEC = 0o4000, 0o2000000
_EVENT_HEAD = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name
_QUIET = frozenset({b".synced", b".lock"})  # the log's bookkeeping, not new records
_libc: ctypes.CDLL | None = None


def _inotify_open(folder: Path) -> int | None:
    """A non-blocking inotify descriptor on ``folder``; None where inotify cannot be had."""
    global _libc
    if not sys.platform.startswith("linux"):
        return None
    try:
        if _libc is None:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fd = int(_libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC))
    except (OSError, AttributeError):
        return None
    if fd < 0:
        return None  # e.g. max_user_instances reached: fall back to watchfiles
    mask = _IN_MODIFY | _IN_CREATE | _IN_MOVED_TO
    if _libc.inotify_add_watch(fd, os.fsencode(folder), mask) < 0:
        os.close(fd)
        return None
    return fd


def _inotify_drain(fd: int) -> bool:
    """Read every pending inotify event; return whether any touched a file other than the
    log's bookkeeping (``.synced``, ``.lock``)."""
    news = False
    while True:
        try:
            data = os.read(fd, 65536)
        except (BlockingIOError, InterruptedError):
            return news
        except OSError:
            return True  # the descriptor broke: wake the reader, its own offset decides
        if not data:
            return news
        at = 0
        while at + _EVENT_HEAD.size <= len(data):
            _wd, _mask, _cookie, size = _EVENT_HEAD.unpack_from(data, at)
            at += _EVENT_HEAD.size
            name = data[at : at + size].rstrip(b"\0")
            at += size
            news = news or name not in _QUIET


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
