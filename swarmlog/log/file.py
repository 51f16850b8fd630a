"""The file-backed event log: numbered segments of NDJSON records that many processes append to.

Layout of ``memory/events/``::

    000000000001.ndjson   sealed segment (read-only, never rewritten)
    000000052117.ndjson   the active segment; its name is the seq of its first record
    .lock                 advisory lock serialising appends across processes
    .synced               group-commit watermark: (generation, segment, offset) known on disk,
                          and the sync turn counter that waiting writers sleep on (mapped)

An append takes the lock, repairs a torn tail a crashed writer left, checks ``expected_seq``,
assigns dense seqs, writes the whole batch with one ``write`` and releases the lock; then it waits
for its durability policy. Under ``always`` one writer at a time runs ``fdatasync``, covering every
byte written before it began; a writer that finds its bytes already covered (the watermark, read
without a lock) returns at once, and one that finds a sync running sleeps until it ends (a futex
on the turn counter), so concurrent writers share syncs (group commit).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import itertools
import mmap
import os
import stat
import struct
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from operator import attrgetter
from pathlib import Path
from typing import Literal, Protocol

import msgspec
import watchfiles

from swarmlog.errors import LogCorrupt, LogError, SeqConflict
from swarmlog.events import Event, EventBase, decode
from swarmlog.log import futex
from swarmlog.log.framing import check_line, decode_lines, first_bad_line, frame_many, line_seq
from swarmlog.log.protocol import Problem, RepairReport, SegmentMark, VerifyReport

__all__ = ["SEGMENT_SUFFIX", "FileLog", "FileReader", "Sync", "list_segments"]

Sync = Literal["always", "batch", "none"]
SEGMENT_SUFFIX = ".ndjson"
_MARK_BODY = struct.Struct("<qqq")  # generation, segment (its first seq), bytes known durable
_MARK = struct.Struct("<qqqI")  # ... and a crc32 of those 24 bytes, so a torn read is noticed
_KEY_OF = attrgetter("key")
_READ_CHUNK = 256 << 10  # a poll reads about this much: bounded memory, and it decodes in cache
_TAIL_PROBE = 64 << 10
_SEEK_WINDOW = 64 << 10  # a reader starting mid-segment reads at most this much before its start
_SYNC_MAP_BYTES = 4096  # .synced is mapped: the mark at 0, the sync turn counter at 64
_TURN_OFFSET = 64
_TURN_WAIT_S = 0.05  # a waiter re-checks at least this often (a syncer killed mid-sync)
_HASH_CHUNK = 1 << 20  # marks hash segments in pieces this big: bounded memory, in cache
_CHECK_CHUNK = 8 << 20  # ... and check the records of bytes marked for the first time in these


def _segment_name(first_seq: int) -> str:
    return f"{first_seq:012d}{SEGMENT_SUFFIX}"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """Return ``(first_seq, path)`` of every segment, oldest first."""
    found = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    for name in names:
        stem, dot, suffix = name.partition(".")
        if dot and "." + suffix == SEGMENT_SUFFIX and stem.isdigit():
            found.append((int(stem), directory / name))
    found.sort()
    return found


def _is_sealed(st: os.stat_result) -> bool:
    return not st.st_mode & stat.S_IWUSR


class FileLog:
    """An append-only log in a folder, safe for many writer and reader processes.

    Args:
        directory: the ``memory/events`` folder; created when ``create`` is true.
        sync: durability policy: ``always`` (fdatasync before an append returns, shared between
            concurrent writers), ``batch`` (the same, after waiting ``group_window_s`` so more
            writers join one sync), or ``none`` (the OS decides; a process crash loses nothing, a
            power cut may lose the last appends).
        segment_bytes: a segment is sealed and a new one started once it would grow past this.
        clock: the source of ``ts`` for events appended without one.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        sync: Sync = "always",
        segment_bytes: int = 64 << 20,
        group_window_s: float = 0.001,
        clock: Callable[[], float] = time.time,
        create: bool = True,
    ) -> None:
        self.directory = Path(directory)
        self.sync: Sync = sync
        self.segment_bytes = segment_bytes
        self.group_window_s = group_window_s
        self._clock = clock
        self._create = create
        self._mutex = threading.Lock()
        self._lock_fd = -1
        self._sync_fd = -1
        self._sync_map: mmap.mmap | None = None
        self._turn: ctypes.c_uint32 | None = None
        self._seg_fd = -1
        self._seg_first = 0
        self._seg_path = Path()
        self._seg_ino = -1
        self._size = -1
        self._last_seq = 0
        self._keys: dict[str, Event] | None = None
        self._keys_reader: FileReader | None = None
        self._marks: dict[int, SegmentMark] = {}  # segment -> mark last checked or made here
        if not self.directory.is_dir():
            if not create:
                raise LogError(
                    f"no event log at {self.directory}; run 'swarmlog init' or pass --dir"
                )
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LogError(
                    f"cannot create the event log folder {self.directory}: {exc.strerror}"
                ) from exc

    # Lifecycle

    def close(self) -> None:
        """Release file descriptors; the log stays valid on disk."""
        with self._mutex:
            self._unmap()
            for name in ("_seg_fd", "_lock_fd", "_sync_fd"):
                fd = getattr(self, name)
                if fd >= 0:
                    os.close(fd)
                    setattr(self, name, -1)

    def __del__(self) -> None:
        # A log dropped without close() must not leak its descriptors (long-lived processes and
        # test suites open many).
        self._unmap()
        for name in ("_seg_fd", "_lock_fd", "_sync_fd"):
            fd = getattr(self, name, -1)
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _unmap(self) -> None:
        self._turn = None  # the ctypes view must go before the mapping can close
        sync_map, self._sync_map = getattr(self, "_sync_map", None), None
        if sync_map is not None:
            try:
                sync_map.close()
            except BufferError:  # a view is still alive somewhere: the mapping goes with it
                pass

    def __enter__(self) -> FileLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Appending

    def append(
        self,
        events: Sequence[EventBase],
        *,
        expected_seq: int | None = None,
        sync: Sync | None = None,
    ) -> list[Event]:
        """Append a batch atomically and return the events as stored (with seq and ts).

        An event whose idempotency ``key`` is already in the log is not written again: the stored
        event is returned in its place. Returns only once the durability policy is met.

        Raises:
            SeqConflict: ``expected_seq`` is given and the log does not end there.
            LogError: the folder is unwritable or the disk is full; nothing was written.
        """
        if not events:
            return []
        policy = sync or self.sync
        with self._mutex:
            self._open_control_files()
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                stored, end = self._append_locked(events, expected_seq)
                fd = self._seg_fd
                seg_first = self._seg_first
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            if end and policy != "none":
                self._make_durable(fd, seg_first, end, policy)
        return stored

    def last_seq(self) -> int:
        """Return the seq of the last complete record (0 for an empty log).

        A read: it takes no lock and changes nothing on disk. A torn tail (a record still being
        written, or one a crashed writer left) is not counted and stays where it is: the next
        append cuts it under the lock, keeping a copy, as does 'swarmlog repair'.

        Raises:
            LogCorrupt: the last complete record does not check, or the newest segment is
                sealed with an incomplete record at its end.
        """
        for first, path in reversed(list_segments(self.directory)):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # cut by 'swarmlog repair' between the listing and the open
            except OSError as exc:
                raise LogError(f"cannot read log segment {path}: {exc.strerror}") from exc
            try:
                st = os.fstat(fd)
                end, seq = _last_record(fd, st.st_size, path, first)
                if end < st.st_size and _is_sealed(st):
                    raise LogCorrupt(
                        str(path),
                        _count_lines(fd, end) + 1,
                        "incomplete record at the end of a sealed segment",
                    )
                return seq
            finally:
                os.close(fd)
        return 0

    def seal(self) -> str | None:
        """Seal the active segment (fsync, read-only) so it never changes; return its path.

        The next append starts a new segment. An empty active segment is left as it is (None).
        """
        with self._mutex:
            self._open_control_files()
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                self._refresh_active()
                if self._size <= 0:
                    return None
                path = str(self._seg_path)
                self._roll_seal()
                return path
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _roll_seal(self) -> None:
        try:
            os.fsync(self._seg_fd)
            os.fchmod(self._seg_fd, 0o444)
        except OSError as exc:
            raise LogError(
                f"cannot seal log segment {self._seg_path}: {exc.strerror}; "
                f"free disk space or fix permissions and retry"
            ) from exc
        os.close(self._seg_fd)
        self._seg_fd = -1
        self._size = -1

    def _open_control_files(self) -> None:
        """Open ``.lock`` and ``.synced`` and map the latter, once."""
        if self._turn is not None:
            return
        try:
            if self._lock_fd < 0:
                self._lock_fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
            if self._sync_fd < 0:
                self._sync_fd = os.open(self.directory / ".synced", os.O_RDWR | os.O_CREAT, 0o644)
            size = os.fstat(self._sync_fd).st_size
            if size < _SYNC_MAP_BYTES:
                # Real zeros, not a sparse hole: a store into an unallocated page of a mapping
                # on a full disk kills the process with SIGBUS; this write fails cleanly instead.
                # A racing writer may zero a fresh mark: that only costs an extra sync.
                os.pwrite(self._sync_fd, bytes(_SYNC_MAP_BYTES - size), size)
            self._sync_map = mmap.mmap(self._sync_fd, _SYNC_MAP_BYTES)
            self._turn = ctypes.c_uint32.from_buffer(self._sync_map, _TURN_OFFSET)
        except OSError as exc:
            raise LogError(
                f"cannot open the event log in {self.directory}: {exc.strerror}; "
                f"check that the folder exists and is writable"
            ) from exc

    def _append_locked(
        self, events: Sequence[EventBase], expected_seq: int | None
    ) -> tuple[list[Event], int]:
        self._refresh_active()
        if expected_seq is not None and expected_seq != self._last_seq:
            raise SeqConflict(expected_seq, self._last_seq)
        fresh, result = self._dedupe(events)
        if not fresh:
            # Every event was already stored, perhaps by a writer still waiting for its sync:
            # wait for the same durability before answering with them.
            return result, self._size  # type: ignore[return-value]
        now = self._clock()
        first = self._last_seq + 1
        replace = msgspec.structs.replace
        stamped: list[Event] = [
            replace(ev, seq=seq, ts=ev.ts or now)  # type: ignore[misc]
            for seq, ev in enumerate(fresh, first)
        ]
        seq = first + len(stamped) - 1
        data = frame_many(stamped)
        if self._size > 0 and self._size + len(data) > self.segment_bytes:
            self._roll(self._last_seq + 1)
        self._write_all(data)
        self._last_seq = seq
        if self._keys is not None:
            for ev in stamped:
                if ev.key is not None:
                    self._keys[ev.key] = ev
        by_id = {id(ev): st for ev, st in zip(fresh, stamped, strict=True)}
        out = [by_id.get(id(r), r) for r in result]
        return out, self._size  # type: ignore[return-value]

    def _dedupe(self, events: Sequence[EventBase]) -> tuple[list[EventBase], list[object]]:
        """Split a batch into events to write and the result list (stored events for known keys)."""
        if list(map(_KEY_OF, events)).count(None) == len(events):
            return list(events), list(events)
        keys = self._catch_up_keys()
        fresh: list[EventBase] = []
        result: list[object] = []
        batch_keys: dict[str, EventBase] = {}
        for ev in events:
            if ev.key is not None and ev.key in keys:
                result.append(keys[ev.key])
            elif ev.key is not None and ev.key in batch_keys:
                result.append(batch_keys[ev.key])
            else:
                if ev.key is not None:
                    batch_keys[ev.key] = ev
                fresh.append(ev)
                result.append(ev)
        return fresh, result

    def _catch_up_keys(self) -> dict[str, Event]:
        if self._keys is None or self._keys_reader is None:
            self._keys = {}
            self._keys_reader = FileReader(self.directory, after=0)
        while batch := self._keys_reader.poll():  # a poll reads about 256 KiB
            for ev in batch:
                if ev.key is not None:
                    self._keys.setdefault(ev.key, ev)
        return self._keys

    def _write_all(self, data: bytes) -> None:
        before = self._size
        try:
            view = memoryview(data)
            while view:
                # A short write (disk full, a signal) is retried so that the error, if any, is
                # the real one: ENOSPC, EFBIG, EROFS, …
                written = os.write(self._seg_fd, view)
                if written <= 0:
                    raise OSError(errno.EIO, "write returned no progress")
                view = view[written:]
        except OSError as exc:
            self._undo_write(before)
            raise LogError(
                f"cannot append to {self._seg_path}: {exc.strerror}; nothing was written; "
                f"free disk space or fix permissions and retry"
            ) from exc
        self._size = before + len(data)

    def _undo_write(self, size: int) -> None:
        """Cut a partial write back off so the batch stays all-or-nothing."""
        try:
            os.ftruncate(self._seg_fd, size)
            self._lower_watermark(size)
        except OSError:
            # The next append (or 'swarmlog repair') will cut the torn tail instead.
            self._size = -1

    def _sync_word(self) -> ctypes.c_uint32:
        """Return the mapped turn counter, after checking that ``.synced`` still covers the map.

        A ``.synced`` cut short under us (by hand) would kill the process with SIGBUS at the next
        touch of the mapping, so its length is checked (one ``fstat``) before each use, and the
        file is mapped afresh (which restores its length). Appends with ``sync="none"`` never
        touch the mapping and skip this.
        """
        if self._turn is not None and os.fstat(self._sync_fd).st_size < _SYNC_MAP_BYTES:
            self._unmap()
        self._open_control_files()
        assert self._turn is not None
        return self._turn

    def _lower_watermark(self, size: int) -> None:
        """Forget sync coverage beyond ``size`` after truncating the active segment.

        Another process may have synced (and recorded) bytes that were then cut off; without this,
        new records written over that range would count as durable without a sync of their own.
        """
        self._sync_word()
        fcntl.flock(self._sync_fd, fcntl.LOCK_EX)
        try:
            gen, seg, end = self._read_mark()
            if (seg, end) > (self._seg_first, size):
                seg, end = self._seg_first, size
            # A new generation also voids the raise of any sync that measured the old size.
            self._write_mark(gen + 1, seg, end)
        finally:
            self._release_sync_lock()

    # The active segment

    def _refresh_active(self) -> None:
        """Make sure our view of the active segment is current; repair a torn tail."""
        if self._seg_fd >= 0:
            st = os.fstat(self._seg_fd)
            if not _is_sealed(st) and st.st_nlink > 0:
                if st.st_size != self._size:
                    # Others appended since our last look (or cut a torn tail: scan from 0).
                    floor = self._size if 0 < self._size < st.st_size else 0
                    if floor and os.pread(self._seg_fd, 1, floor - 1) != b"\n":
                        floor = 0  # rewritten under us ('swarmlog repair'): scan afresh
                    self._scan_tail(st.st_size, floor=floor)
                return
            os.close(self._seg_fd)
            self._seg_fd = -1
        segments = list_segments(self.directory)
        if not segments:
            self._open_segment(1, create=True)
            self._size = 0
            self._last_seq = 0
            return
        first, path = segments[-1]
        try:
            is_sealed = _is_sealed(path.stat())
        except FileNotFoundError:
            is_sealed = False  # removed under us: the open below reports it
        self._open_segment(first, create=False, writable=not is_sealed)
        self._scan_tail(os.fstat(self._seg_fd).st_size, may_cut=not is_sealed)
        if is_sealed:
            # A writer sealed this segment and died before creating the next one.
            os.close(self._seg_fd)
            self._seg_fd = -1
            self._open_segment(self._last_seq + 1, create=True)
            self._size = 0

    def _open_segment(self, first_seq: int, *, create: bool, writable: bool = True) -> None:
        path = self.directory / _segment_name(first_seq)
        flags = os.O_RDWR | os.O_APPEND if writable else os.O_RDONLY
        if create:
            flags |= os.O_CREAT | os.O_EXCL
        try:
            fd = os.open(path, flags, 0o644)
        except OSError as exc:
            raise LogError(
                f"cannot open log segment {path}: {exc.strerror}; check permissions and disk space"
            ) from exc
        self._seg_fd = fd
        self._seg_first = first_seq
        self._seg_path = path
        if create:
            self._fsync_dir()

    def _scan_tail(self, size: int, *, may_cut: bool = True, floor: int = 0) -> None:
        """Find the last complete record of the active segment; cut off an incomplete one.

        ``floor`` is an offset known to end a complete record (our own last view of the segment,
        whose last seq is ``self._last_seq``): only the bytes after it are read, so a writer
        catching up on other writers' appends reads a few hundred bytes, not the probe size.
        Writers only (under the lock): readers call ``_last_record`` and leave a torn tail be.
        """
        floor_seq = self._last_seq if floor > 0 else self._seg_first - 1
        end, seq = _last_record(
            self._seg_fd, size, self._seg_path, self._seg_first, floor=floor, floor_seq=floor_seq
        )
        if end < size:
            if not may_cut:
                raise LogCorrupt(
                    str(self._seg_path),
                    _count_lines(self._seg_fd, end) + 1,
                    "incomplete record at the end of a sealed segment",
                )
            self._save_torn(end, size)
        self._size = end
        self._last_seq = seq

    def _save_torn(self, cut: int, size: int) -> None:
        """Keep what a crashed writer left half-written beside the segment, then truncate."""
        torn = os.pread(self._seg_fd, size - cut, cut)
        try:
            _save_removed(self._seg_path, torn)
            os.ftruncate(self._seg_fd, cut)
            os.fsync(self._seg_fd)
            self._lower_watermark(cut)
        except OSError as exc:
            raise LogError(
                f"cannot cut the torn tail of {self._seg_path} at byte {cut}: {exc.strerror}; "
                f"free disk space or fix permissions, then run 'swarmlog repair'"
            ) from exc

    def _roll(self, next_seq: int) -> None:
        """Seal the active segment and start a new one whose name is ``next_seq``.

        Sealing comes first: a reader that sees a newer segment may rely on the older one being
        final, and a writer that dies between the two steps leaves a sealed newest segment, which
        the next append recognises and follows with a new one.
        """
        self._roll_seal()
        self._open_segment(next_seq, create=True)
        self._size = 0

    def _fsync_dir(self) -> None:
        try:
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise LogError(
                f"cannot sync the folder {self.directory}: {exc.strerror}; check the disk"
            ) from exc

    # Durability

    def _make_durable(self, fd: int, seg_first: int, end: int, policy: Sync) -> None:
        """Wait until bytes up to ``end`` of segment ``seg_first`` are on disk.

        Group commit: whoever holds the sync lock runs one ``fdatasync`` covering every byte
        written before it began, records it in the watermark, releases the lock and advances the
        turn counter beside the watermark. A writer whose bytes the watermark already covers
        returns without any lock. One that is not covered tries the lock without blocking: if it
        gets it, it syncs for everyone; if a sync is running, it sleeps on the turn counter (a
        futex) until that sync ends, then looks again. Blocking on the lock instead would wake
        every waiter at each release and make each covered writer queue for the lock in turn.
        """
        try:
            turn_word = self._sync_word()
            if self._covered(seg_first, end):
                return
            if policy == "batch" and self.group_window_s > 0:
                time.sleep(self.group_window_s)  # let more writers join this sync
            while True:
                turn = turn_word.value  # read before trying the lock: see _release_sync_lock
                if self._covered(seg_first, end):
                    return
                try:
                    fcntl.flock(self._sync_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    futex.wait(turn_word, turn, _TURN_WAIT_S)
                    continue
                try:
                    gen, seg, done = self._read_mark()
                    if (seg, done) < (seg_first, end):
                        target = os.fstat(fd).st_size
                        os.fdatasync(fd)
                        if (seg_first, target) > (seg, done):
                            self._write_mark(gen, seg_first, target)
                finally:
                    self._release_sync_lock()
                return
        except OSError as exc:
            raise LogError(
                f"cannot sync {self.directory}: {exc.strerror}; the append may not be durable"
            ) from exc

    def _release_sync_lock(self) -> None:
        """Release the sync lock, then advance the turn counter and wake its sleepers.

        The order matters: a waiter reads the counter before it tries the lock, so if its try
        fails, the holder's advance comes after that read and the waiter's futex wait returns.
        """
        fcntl.flock(self._sync_fd, fcntl.LOCK_UN)
        if self._turn is not None:
            self._turn.value = (self._turn.value + 1) & 0xFFFFFFFF
            futex.wake(self._turn)

    def _covered(self, seg_first: int, end: int) -> bool:
        _gen, seg, done = self._read_mark()
        return (seg, done) >= (seg_first, end)

    def _read_mark(self) -> tuple[int, int, int]:
        """Return (generation, segment, durable bytes); all zero when unset or torn."""
        assert self._sync_map is not None
        raw = self._sync_map[: _MARK.size]
        gen, seg, end, crc = _MARK.unpack(raw)
        if zlib.crc32(raw[: _MARK_BODY.size]) != crc:
            return 0, 0, 0  # read while another process wrote it: assume nothing is covered
        return gen, seg, end

    def _write_mark(self, gen: int, seg: int, end: int) -> None:
        assert self._sync_map is not None
        body = _MARK_BODY.pack(gen, seg, end)
        self._sync_map[: _MARK.size] = body + struct.pack("<I", zlib.crc32(body))

    # Reading

    def reader(self, after: int = 0) -> FileReader:
        """Return a cursor that yields each record after ``after`` once, in order."""
        return FileReader(self.directory, after=after)

    def read(self, after: int = 0) -> Iterator[Event]:
        """Return an iterator over every complete record with seq > ``after``, verifying each."""
        # C-level iteration: poll until it returns [], flattening the batches.
        return itertools.chain.from_iterable(iter(self.reader(after).poll, []))

    def subscribe(
        self,
        after: int = 0,
        *,
        stop: threading.Event | None = None,
        step_ms: int = 1,
        poll_s: float = 0.5,
    ) -> Iterator[Event]:
        """Yield records after ``after`` forever, waking on file notifications.

        Notifications are only a doorbell: each wake reads from this subscriber's own offset, and a
        periodic re-read every ``poll_s`` means a missed notification costs latency, never an event.
        """
        reader = self.reader(after)
        while batch := reader.poll():  # the backlog, in bounded batches
            yield from batch
        for _changes in watchfiles.watch(
            self.directory,
            watch_filter=None,
            debounce=max(step_ms * 4, 4),
            step=step_ms,
            stop_event=stop,
            rust_timeout=int(poll_s * 1000),
            yield_on_timeout=True,
        ):
            while batch := reader.poll():
                yield from batch
            if stop is not None and stop.is_set():
                return

    async def asubscribe(
        self,
        after: int = 0,
        *,
        stop: _AsyncStop | None = None,
        step_ms: int = 1,
        poll_s: float = 0.5,
    ) -> AsyncIterator[Event]:
        """Async twin of ``subscribe``; ``stop`` is an ``asyncio.Event`` or ``anyio.Event``."""
        reader = self.reader(after)
        while batch := reader.poll():  # the backlog, in bounded batches
            for ev in batch:
                yield ev
        async for _changes in watchfiles.awatch(
            self.directory,
            watch_filter=None,
            debounce=max(step_ms * 4, 4),
            step=step_ms,
            stop_event=stop,
            rust_timeout=int(poll_s * 1000),
            yield_on_timeout=True,
        ):
            while batch := reader.poll():
                for ev in batch:
                    yield ev

    # Integrity

    def fingerprint(self, seq: int) -> tuple[SegmentMark, ...]:
        """Return marks of every byte that holds records 1..``seq``, for a snapshot at ``seq``.

        A segment wholly before ``seq`` is marked whole; the one holding ``seq`` up to the end
        of that record (bytes a writer may still add after it are not covered). Marks this
        handle checked (``check_prefix``) or made before are carried on: bytes they cover keep
        the checksum they had then (damage since stays visible to the next check) and are only
        read again to take the stat of a segment sealed since. Bytes marked for the first time
        are read, and every record in them must check (``LogCorrupt`` otherwise): a mark never
        vouches for damage. A read: nothing on disk changes.
        """
        marks: list[SegmentMark] = []
        segments = list_segments(self.directory)
        for index, (first, path) in enumerate(segments):
            if first > seq:
                break
            later = segments[index + 1][0] if index + 1 < len(segments) else None
            fd = self._open_segment_to_read(path)
            try:
                st = os.fstat(fd)
                if later is not None and later <= seq + 1:
                    length = st.st_size
                else:
                    length = _record_end(fd, path, first, seq, st.st_size)
                marks.append(self._mark(fd, path, first, length, st))
            finally:
                os.close(fd)
        self._marks = {m.first: m for m in marks}
        return tuple(marks)

    def check_prefix(self, seq: int, marks: Sequence[SegmentMark]) -> str:
        """Check that the bytes holding records 1..``seq`` are as a snapshot's ``marks`` say.

        A whole sealed segment whose inode, size, mtime and ctime are as marked is taken as
        unchanged (one ``fstat``); any other marked range is read and its CRC-32 compared (no
        decoding: about 2 GB/s). Where the bytes differ, the segment is scanned to name the
        first damaged record: ``LogCorrupt`` with its file and line, as reading it would raise.
        Bytes that differ although every record checks (the segment was rewritten or replaced)
        return a reason: the snapshot is not this log's. With no marks (a snapshot written
        without them) every record up to ``seq`` is checked instead. Returns "" when all is
        well. A read: nothing on disk changes.
        """
        self._marks = {}
        if not marks:
            self.fingerprint(seq)  # checks every record it marks
            return ""
        checked: dict[int, SegmentMark] = {}
        for mark in marks:
            path = self.directory / _segment_name(mark.first)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError as exc:
                raise LogCorrupt(
                    str(path), 1, f"segment missing; the snapshot at seq {seq} was folded from it"
                ) from exc
            except OSError as exc:
                raise LogError(f"cannot read log segment {path}: {exc.strerror}") from exc
            try:
                st = os.fstat(fd)
                if mark.ino and _stat_key(st) == (
                    mark.ino,
                    mark.length,
                    mark.mtime_ns,
                    mark.ctime_ns,
                ):
                    checked[mark.first] = mark
                    continue
                crc, end = _crc_range(fd, 0, mark.length)
                if end == mark.length and crc == mark.crc:
                    after = os.fstat(fd)
                    if _stat_key(after) == _stat_key(st) and _is_whole_and_sealed(after, end):
                        mark = msgspec.structs.replace(mark, **_stat_fields(after))
                    checked[mark.first] = mark
                    continue
                _raise_first_damage(fd, path, mark.first, end)
                if end < mark.length:
                    raise LogCorrupt(
                        str(path),
                        _count_lines(fd, end) + 1,
                        f"segment ends at byte {end}; it held {mark.length} bytes when the "
                        f"snapshot at seq {seq} was taken: records were cut off",
                    )
                return (
                    f"segment {path.name} is not the one it was folded from (its bytes differ "
                    f"though every record checks: rewritten or replaced)"
                )
            finally:
                os.close(fd)
        self._marks = checked
        return ""

    def _open_segment_to_read(self, path: Path) -> int:
        try:
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise LogError(f"cannot read log segment {path}: {exc.strerror}") from exc

    def _mark(
        self, fd: int, path: Path, first: int, length: int, st: os.stat_result
    ) -> SegmentMark:
        """Mark a segment's first ``length`` bytes, carrying on what this handle marked before."""
        whole = _is_whole_and_sealed(st, length)
        old = self._marks.get(first)
        if old is not None and old.length > length:
            old = None  # a mark of more than is asked for (an earlier seq): start afresh
        if old is not None and old.length == length and (old.ino or not whole):
            return old
        if old is not None and not whole:
            crc = _checked_crc(fd, path, first, old.length, length, old.crc)
            return SegmentMark(first=first, length=length, crc=crc)
        # From the start: what an old mark covered must hash as it did, the rest must check.
        crc = 0
        if old is not None:
            crc, end = _crc_range(fd, 0, old.length)
            if end != old.length or crc != old.crc:
                _raise_first_damage(fd, path, first, end)
                raise LogCorrupt(
                    str(path), 1, "segment rewritten since it was read (every record checks)"
                )
        crc = _checked_crc(fd, path, first, old.length if old else 0, length, crc)
        after = os.fstat(fd)
        if whole and _stat_key(after) == _stat_key(st):
            return SegmentMark(first=first, length=length, crc=crc, **_stat_fields(after))
        return SegmentMark(first=first, length=length, crc=crc)

    def verify(self) -> VerifyReport:
        """Check every record of every segment without stopping at the first problem."""
        return verify_folder(self.directory)

    def repair(self) -> RepairReport:
        """Truncate a damaged tail of the active segment, keeping a copy of what was removed.

        Refuses (``LogCorrupt``) when damage is followed by valid records: cutting there would lose
        acknowledged events.
        """
        with self._mutex:
            self._open_control_files()
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                return _repair_tail(self.directory)
            finally:
                if self._seg_fd >= 0:
                    os.close(self._seg_fd)
                    self._seg_fd = -1
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)


class _AsyncStop(Protocol):  # what awatch needs of asyncio.Event / anyio.Event
    def is_set(self) -> bool: ...


class FileReader:
    """A cursor over the log: ``poll()`` returns the records that appeared since the last poll.

    It keeps the segment it is reading open between polls, and lists the folder only once that
    segment is sealed: a writer seals a segment before it creates the next one, so while ours is
    writable no newer segment can exist. A poll that finds nothing new costs one ``fstat``.
    """

    def __init__(self, directory: Path, *, after: int = 0) -> None:
        self.directory = directory
        self.after = after
        self.next_seq = 1
        self._path: Path | None = None
        self._fd = -1  # the current segment, opened read-only on first use
        self._first = 0
        self._offset = 0
        self._line_no = 0
        self._started = False
        self._known: list[tuple[int, Path]] = []  # segments seen at the last listing

    def close(self) -> None:
        """Release the segment's descriptor; a later poll opens it again."""
        fd, self._fd = getattr(self, "_fd", -1), -1
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass

    def __del__(self) -> None:
        self.close()

    @property
    def position(self) -> int:
        """The seq of the last record returned (or skipped because it was <= after)."""
        return max(self.next_seq - 1, self.after)

    def _start(self) -> bool:
        segments = self._known = list_segments(self.directory)
        if not segments:
            return False
        target = self.after + 1
        chosen = segments[0]
        for first, path in segments:
            if first <= target:
                chosen = (first, path)
        self._first, self._path = chosen
        self.next_seq = self._first
        self._offset = 0
        self._line_no = 0
        self._started = True
        return True

    def _seek(self) -> None:
        """Start at the record ``after + 1`` of the chosen segment without reading up to it.

        Records of a segment are in seq order, one a line, so bisection over byte offsets finds
        the last record at or before the target in about ``log2(size / 64 KiB)`` small reads;
        reading then begins there (records up to ``after`` are dropped as usual). The records
        skipped are not checked here: ``verify`` reads every byte. A probe that lands on a
        record that does not check falls back to reading from the segment's start, which names it.
        """
        fd = self._segment_fd()
        target = self.after + 1
        lo, lo_seq = 0, self._first  # a record start whose seq is <= target
        hi = os.fstat(fd).st_size  # no record starting at or after hi has seq <= target
        while hi - lo > _SEEK_WINDOW:
            mid = (lo + hi) // 2
            probe = _record_at(fd, mid, hi)
            if probe is None:
                return  # damage (or nothing complete) under the probe: read from the start
            start, seq = probe
            if start >= hi or seq > target:
                hi = mid
            else:
                lo, lo_seq = start, seq
        self._offset = lo
        self.next_seq = lo_seq
        self._line_no = lo_seq - self._first

    def _segment_fd(self) -> int:
        if self._fd < 0:
            assert self._path is not None
            try:
                self._fd = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError as exc:
                raise self._vanished() from exc
        return self._fd

    def _vanished(self) -> LogError:
        return LogError(
            f"log segment {self._path} vanished while reading; segments must never be "
            f"deleted while the log is in use"
        )

    def poll(self, max_bytes: int = _READ_CHUNK) -> list[Event]:
        """Return every record completed since the last poll, across segments.

        Stops early once about ``max_bytes`` were read, so a huge backlog comes in bounded
        batches: poll again until it returns nothing. Raises ``LogCorrupt`` on damage.
        """
        if not self._started:
            if not self._start():
                return []
            if self.after >= self._first:
                self._seek()
        out: list[Event] = []
        budget = max_bytes
        chunk = max_bytes
        rechecked = False
        while True:
            fd = self._segment_fd()
            st = os.fstat(fd)
            if not st.st_nlink:
                raise self._vanished()
            # Ask for what is there, not for a whole chunk: a poll that finds a few new records
            # (the common case when following) then allocates a few hundred bytes.
            avail = st.st_size - self._offset
            data = os.pread(fd, min(chunk, avail), self._offset) if avail > 0 else b""
            # A writer seals a segment before it creates the next: while ours is writable (and
            # not followed by one we listed: a segment unsealed by hand), nothing follows it.
            sealed = _is_sealed(st) or (bool(self._known) and self._known[-1][0] > self._first)
            end = data.rfind(b"\n")
            if end >= 0:
                damaged = False
                lines = data.split(b"\n")
                del lines[-1]  # what follows the last newline: b"" or a record being written
                try:
                    events = decode_lines(
                        lines,
                        path=str(self._path),
                        first_line_no=self._line_no + 1,
                        expected_seq=self.next_seq,
                        raw=memoryview(data)[: end + 1],
                    )
                except LogCorrupt as exc:
                    # Hand over the good records before the damage first; the next poll starts
                    # at the damaged record and raises there.
                    good = exc.line - self._line_no - 1
                    if good <= 0:
                        if out:
                            return out
                        raise
                    del lines[good:]
                    end = sum(map(len, lines)) + good - 1
                    events = decode_lines(
                        lines,
                        path=str(self._path),
                        first_line_no=self._line_no + 1,
                        expected_seq=self.next_seq,
                    )
                    damaged = True
                self._offset += end + 1
                self._line_no += len(lines)
                self.next_seq += len(events)
                if events[0].seq <= self.after:
                    events = [e for e in events if e.seq > self.after]
                out.extend(events)
                if damaged:
                    if out:
                        return out
                    continue  # the good records were all <= after: read on to the damage
                budget -= end + 1
                if budget <= 0 and out:
                    # Bounded batches; but never return [] while records remain: callers read
                    # until a poll comes back empty (a chunk of records <= after is skipped on).
                    return out
                if len(data) >= chunk:
                    continue  # more of this segment to read
                if len(data) > end + 1:
                    # An incomplete record: a writer is mid-write, unless the segment is sealed.
                    if not sealed or not self._check_unsealed_tail(rechecked):
                        return out
                    rechecked = True
                    continue
            elif len(data) >= chunk:
                chunk *= 2  # one record larger than the chunk
                continue
            elif data:
                if not sealed or not self._check_unsealed_tail(rechecked):
                    return out
                rechecked = True
                continue
            if not sealed or not self._advance():
                return out

    def _newer_segment(self) -> tuple[int, Path] | None:
        """Return the segment after the current one, listing the folder only when needed."""
        for first, path in self._known:
            if first > self._first:
                return first, path
        self._known = list_segments(self.directory)
        for first, path in self._known:
            if first > self._first:
                return first, path
        return None

    def _check_unsealed_tail(self, rechecked: bool) -> bool:
        """Return True to read again when a newer segment exists (so ours should be whole).

        A record still incomplete after that second read sits in a sealed segment: damage.
        """
        if self._newer_segment() is None:
            return False
        if rechecked:
            raise LogCorrupt(
                str(self._path), self._line_no + 1, "incomplete record in a sealed segment"
            )
        return True

    def _advance(self) -> bool:
        """Move to the next segment if the current one is sealed by a newer one."""
        newer = self._newer_segment()
        if newer is None:
            return False
        # A newer segment exists, so ours is final: but records may have been appended to it
        # after our last read and before the roll. Read those first.
        if os.fstat(self._segment_fd()).st_size > self._offset:
            return True
        first, path = newer
        if first != self.next_seq:
            raise LogCorrupt(
                str(path),
                1,
                f"segment starts at seq {first} but the previous one ended at "
                f"seq {self.next_seq - 1}",
            )
        self.close()
        self._first, self._path = first, path
        self._offset = 0
        self._line_no = 0
        return True


def _stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _stat_fields(st: os.stat_result) -> dict[str, int]:
    return {"ino": st.st_ino, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}


def _is_whole_and_sealed(st: os.stat_result, length: int) -> bool:
    return _is_sealed(st) and st.st_size == length


def _crc_range(fd: int, start: int, end: int, crc: int = 0) -> tuple[int, int]:
    """Return the CRC-32 of bytes ``start``..``end`` (continuing ``crc``) and where reading
    stopped: ``end``, or the end of a file shorter than that."""
    buf = bytearray(min(_HASH_CHUNK, max(end - start, 0)))
    view = memoryview(buf)
    pos = start
    while pos < end:
        n = os.preadv(fd, [view[: min(len(buf), end - pos)]], pos)
        if n <= 0:
            break
        crc = zlib.crc32(view[:n], crc)
        pos += n
    return crc, pos


def _checked_crc(fd: int, path: Path, first: int, start: int, end: int, crc: int) -> int:
    """Continue ``crc`` over bytes ``start``..``end`` (whole records), checking each record.

    Raises ``LogCorrupt`` naming the first record that does not check, or an incomplete one.
    """
    pos = start
    line_no = 0  # counted only when a problem needs a line number
    while pos < end:
        data = os.pread(fd, min(_CHECK_CHUNK, end - pos), pos)
        if not data:
            raise LogCorrupt(
                str(path), _count_lines(fd, pos) + 1, f"segment ends at byte {pos}, before {end}"
            )
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            if pos + len(data) < end:  # one record longer than the chunk
                data = os.pread(fd, end - pos, pos)
                cut = data.rfind(b"\n") + 1
            if cut == 0:
                raise LogCorrupt(str(path), _count_lines(fd, pos) + 1, "incomplete record")
        lines = data[:cut].split(b"\n")
        del lines[-1]
        bad, problem = first_bad_line(lines)
        if problem:
            line_no = _count_lines(fd, pos) + bad + 1
            raise LogCorrupt(str(path), line_no, problem)
        crc = zlib.crc32(memoryview(data)[:cut], crc)
        pos += cut
    return crc


def _raise_first_damage(fd: int, path: Path, first: int, end: int) -> None:
    """Raise ``LogCorrupt`` at the first record among bytes 0..``end`` that does not check or
    breaks the dense seq; return when there is none."""
    data = os.pread(fd, end, 0)
    lines = data[: data.rfind(b"\n") + 1].split(b"\n")
    del lines[-1]
    bad, problem = first_bad_line(lines)
    if problem:
        raise LogCorrupt(str(path), bad + 1, problem)
    for i, line in enumerate(lines):
        if (seq := line_seq(line)) != first + i:
            raise LogCorrupt(
                str(path), i + 1, f"seq {seq} where {first + i} was expected (gap or repeat)"
            )


def _record_end(fd: int, path: Path, first: int, seq: int, size: int) -> int:
    """Return the offset just past record ``seq``'s newline in a segment starting at ``first``.

    Bisects like ``FileReader._seek`` (a damaged probe falls back to counting from the start),
    then counts newlines: records are dense, one a line. Raises ``LogCorrupt`` when the line
    found there is not record ``seq``.
    """
    if seq < first:
        return 0
    lo, lo_seq, hi = 0, first, size
    while hi - lo > _SEEK_WINDOW:
        mid = (lo + hi) // 2
        probe = _record_at(fd, mid, hi)
        if probe is None:
            lo, lo_seq = 0, first
            break
        start, found = probe
        if start >= hi or found > seq:
            hi = mid
        else:
            lo, lo_seq = start, found
    pos, left = lo, seq - lo_seq  # newlines to pass before record seq's line begins
    start = lo
    while True:
        data = os.pread(fd, _SEEK_WINDOW, pos)
        if not data:
            raise LogCorrupt(
                str(path), _count_lines(fd, size) + 1, f"no complete record {seq} in the segment"
            )
        nl = -1
        while True:
            nl = data.find(b"\n", nl + 1)
            if nl < 0:
                break
            if left == 0:
                end = pos + nl + 1
                line = os.pread(fd, end - 1 - start, start)
                if check_line(line) or line_seq(line) != seq:
                    _raise_first_damage(fd, path, first, end)
                    raise LogCorrupt(
                        str(path), _count_lines(fd, end), f"record {seq} is not where it belongs"
                    )
                return end
            left -= 1
            start = pos + nl + 1
        pos += len(data)


def _count_lines(fd: int, size: int) -> int:
    return os.pread(fd, size, 0).count(b"\n")


def _last_record(
    fd: int, size: int, path: Path, first: int, *, floor: int = 0, floor_seq: int = -1
) -> tuple[int, int]:
    """Return (end, seq) of the last complete record among a segment's first ``size`` bytes.

    ``end`` is the offset just past its newline: bytes from ``end`` to ``size`` are a torn tail
    (a record being written, or left by a crash). A segment holding no complete record gives
    ``(0, first - 1)``. ``floor``, when given, is an offset known to end the complete record
    ``floor_seq``: nothing before it is read. Changes nothing on disk.

    Raises ``LogCorrupt`` when that last complete record does not check.
    """
    if not floor:
        floor_seq = first - 1
    probe = _TAIL_PROBE
    while True:
        if size <= floor:
            return size, (floor_seq if size == floor else first - 1)
        start = max(floor, size - probe)
        tail = os.pread(fd, size - start, start)
        nl = tail.rfind(b"\n")
        if nl < 0:
            if start > floor:
                probe *= 4  # one record longer than the probe
                continue
            return floor, floor_seq  # nothing complete after the floor
        prev = tail.rfind(b"\n", 0, nl)
        if prev < 0 and start > floor:
            probe *= 4
            continue
        end = start + nl + 1
        problem = check_line(tail[prev + 1 : nl])
        if problem:
            raise LogCorrupt(str(path), _count_lines(fd, end), f"last record: {problem}")
        return end, line_seq(tail[prev + 1 : nl])


def _record_at(fd: int, offset: int, limit: int) -> tuple[int, int] | None:
    """Return (start, seq) of the first record starting after byte ``offset - 1``.

    Returns ``(limit, 0)`` when no complete record starts before ``limit``, and None when the
    record found there does not check.
    """
    window = 4096
    while True:
        data = os.pread(fd, min(window, limit - offset + 1), offset - 1)
        nl = data.find(b"\n")
        end = data.find(b"\n", nl + 1) if nl >= 0 else -1
        if end >= 0:
            line = data[nl + 1 : end]
            if check_line(line):
                return None
            return offset + nl, line_seq(line)
        if offset - 1 + len(data) >= limit:
            return limit, 0
        window *= 4  # a record longer than the window


# Whole-folder checks (used by verify and repair; they read every byte)


def _save_removed(segment: Path, data: bytes) -> Path:
    n = 1
    while (dest := segment.with_name(f"{segment.name}.removed-{n}")).exists():
        n += 1
    with open(dest, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return dest


def _scan_segment(path: Path, expected_seq: int) -> tuple[list[Problem], int, int, int]:
    """Check one segment line by line, carrying on past damage so every bad line is listed.

    Returns (problems, good records, last good seq or -1, bytes after the last newline).
    """
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    problems: list[Problem] = []
    records = 0
    last = -1
    seq = expected_seq
    for i, line in enumerate(data[:end].split(b"\n")[:-1], start=1):
        problem = check_line(line)
        if not problem:
            try:
                got = decode(line).seq
            except msgspec.DecodeError as exc:
                problem = f"not an event ({exc})"
        if problem:
            problems.append(Problem(str(path), i, problem))
            seq += 1
            continue
        if got != seq:
            problems.append(Problem(str(path), i, f"seq {got} where {seq} was expected"))
        seq = got + 1
        last = got
        records += 1
    return problems, records, last, len(data) - end


def verify_folder(directory: Path) -> VerifyReport:
    """Check every segment: checksums, decoding, dense seq across segments, torn tail."""
    segments = list_segments(directory)
    problems: list[Problem] = []
    records = 0
    last = 0
    torn = 0
    expected = 1
    for index, (first, path) in enumerate(segments):
        if first != expected:
            problems.append(
                Problem(
                    str(path), 1, f"segment starts at seq {first} where {expected} was expected"
                )
            )
        found, count, seg_last, tail = _scan_segment(path, first)
        problems.extend(found)
        records += count
        if seg_last >= 0:
            last = seg_last
        expected = (seg_last + 1) if seg_last >= 0 else first
        if tail:
            if index == len(segments) - 1:
                torn = tail
            else:
                problems.append(
                    Problem(str(path), count + 1, "incomplete record in a sealed segment")
                )
    return VerifyReport(
        segments=len(segments),
        records=records,
        last_seq=last,
        torn_tail_bytes=torn,
        problems=tuple(problems),
    )


def _repair_tail(directory: Path) -> RepairReport:
    segments = list_segments(directory)
    if not segments:
        return RepairReport(removed_bytes=0, saved_to="", segment="")
    first, path = segments[-1]
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    lines = data[:end].split(b"\n")[:-1]
    # Keep the longest prefix of good lines; everything after it must be bad to count as a tail.
    offsets = []
    pos = 0
    for line in lines:
        offsets.append(pos)
        pos += len(line) + 1
    good = len(lines)
    for i, line in enumerate(lines):
        if check_line(line):
            good = i
            break
    for j in range(good, len(lines)):
        if not check_line(lines[j]):
            raise LogCorrupt(
                str(path),
                good + 1,
                f"damaged record followed by a valid one at line {j + 1}; this is not a torn tail "
                f"and cutting it would lose acknowledged events; restore the segment from a backup",
            )
    cut = offsets[good] if good < len(lines) else end
    if cut == len(data):
        return RepairReport(removed_bytes=0, saved_to="", segment=str(path))
    saved = _save_removed(path, data[cut:])
    with open(path, "r+b") as fh:
        fh.truncate(cut)
        fh.flush()
        os.fsync(fh.fileno())
    del first
    return RepairReport(removed_bytes=len(data) - cut, saved_to=str(saved), segment=str(path))
