"""The doorbell on a file log's folder: inotify on Linux, watchfiles as the fallback; an agent's
private bell."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import pytest

from swarmlog.events import Note
from swarmlog.log import FileLog, MemoryLog
from swarmlog.runtime import doorbell
from swarmlog.runtime.doorbell import Doorbell

pytestmark = pytest.mark.anyio
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify")


def _append_later(folder: str, delay_s: float) -> None:
    time.sleep(delay_s)
    FileLog(folder).append([Note(text="hello", actor="other")])


@linux_only
async def test_rings_when_another_process_appends(tmp_path: Path) -> None:
    log = FileLog(tmp_path / "events")
    log.append([Note(text="first", actor="me")])
    async with Doorbell(log) as bell:
        assert bell._inotify is not None  # the kernel watch, not the polling fallback
        proc = mp.get_context("spawn").Process(
            target=_append_later, args=(str(log.directory), 0.05)
        )
        proc.start()
        try:
            assert await bell.wait(20.0)
        finally:
            proc.join(20)
    assert [e.seq for e in log.read()] == [1, 2]


@linux_only
async def test_quiet_while_idle_and_on_the_logs_bookkeeping(tmp_path: Path) -> None:
    folder = tmp_path / "events"
    folder.mkdir()
    async with Doorbell(folder) as bell:
        assert not await bell.wait(0.05)
        (folder / ".synced").write_bytes(b"mark")
        (folder / ".lock").write_bytes(b"")
        assert not await bell.wait(0.05)
        (folder / "000000000001.ndjson").write_bytes(b"{}\n")
        assert await bell.wait(5.0)
        assert not await bell.wait(0.01)  # one ring per batch of changes, then quiet again
    assert bell._inotify is None  # closed on exit


async def test_falls_back_to_watchfiles_without_inotify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(doorbell, "_inotify_open", lambda folder: None)
    folder = tmp_path / "events"
    folder.mkdir()
    async with Doorbell(folder, step_ms=1) as bell:
        assert bell._inotify is None and bell._task is not None
        await asyncio.sleep(0.05)  # let the watcher start
        (folder / "000000000001.ndjson").write_bytes(b"{}\n")
        assert await bell.wait(10.0)


def test_inotify_unavailable_on_a_missing_folder(tmp_path: Path) -> None:
    assert doorbell._inotify_open(tmp_path / "missing") is None


@linux_only
async def test_a_ring_before_the_wait_is_kept_and_a_cancelled_wait_leaves_no_waiter(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "events"
    folder.mkdir()
    async with Doorbell(folder) as bell:
        (folder / "000000000001.ndjson").write_bytes(b"{}\n")
        await asyncio.sleep(0.05)  # the loop reads the inotify event before anyone waits
        assert await bell.wait(0.0)
        waiting = asyncio.ensure_future(bell.wait(30.0))
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert bell._waiter is None
        (folder / "000000000001.ndjson").write_bytes(b"{}\n{}\n")
        assert await bell.wait(5.0)


@linux_only
async def test_a_private_bell_rings_on_its_ring_not_on_the_log(tmp_path: Path) -> None:
    log = FileLog(tmp_path / "events")
    log.append([Note(text="first", actor="me")])
    address = doorbell.agent_bell(log, "builder", os.getpid())
    assert address is not None and address.startswith(b"\0")
    assert doorbell.agent_bell(log, "scout", os.getpid()) != address
    ringer = doorbell.Ringer()
    async with Doorbell(log, address=address) as bell:
        assert bell._inotify is None  # not following the folder
        log.append([Note(text="not for me", actor="other")])
        assert not await bell.wait(0.05)
        assert ringer.ring(address)
        assert ringer.ring(address)  # two rings before a wait: one wake-up
        assert await bell.wait(5.0)
        assert not await bell.wait(0.01)
    assert not ringer.ring(address)  # nobody listens any more: ignored, never raised
    ringer.close()


async def test_no_private_bell_for_a_log_without_a_folder() -> None:
    assert doorbell.agent_bell(MemoryLog(), "builder", 1) is None
