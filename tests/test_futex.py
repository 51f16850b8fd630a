"""The futex wait/wake used by group commit, across real processes sharing a file mapping."""

from __future__ import annotations

import ctypes
import fcntl
import mmap
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from swarmlog.events import Note
from swarmlog.log import FileLog, futex

WAITER = textwrap.dedent(
    """
    import ctypes, mmap, sys, time
    from swarmlog.log import futex
    fd = open(sys.argv[1], "r+b")
    mapping = mmap.mmap(fd.fileno(), 4096)
    word = ctypes.c_uint32.from_buffer(mapping, 64)
    print("waiting", flush=True)
    start = time.monotonic()
    while word.value == 0 and time.monotonic() - start < 60:
        futex.wait(word, 0, 30.0)
    print(word.value, flush=True)
    """
)


def test_wait_times_out_and_returns_at_once_when_the_word_differs(tmp_path: Path):
    mapping = mmap.mmap(-1, 4096)
    word = ctypes.c_uint32.from_buffer(mapping, 64)
    word.value = 7
    futex.wait(word, 6, 30.0)  # differs: must not sleep 30 s (the test would time out)
    futex.wait(word, 7, 0.01)  # holds: sleeps at most the timeout
    futex.wake(word)  # nobody waiting: harmless
    del word
    mapping.close()


@pytest.mark.timeout(30)
def test_a_wake_from_another_process_ends_the_wait(tmp_path: Path):
    shared = tmp_path / "word"
    shared.write_bytes(bytes(4096))
    waiter = subprocess.Popen(
        [sys.executable, "-c", WAITER, str(shared)], stdout=subprocess.PIPE, text=True
    )
    assert waiter.stdout is not None
    assert waiter.stdout.readline() == "waiting\n"
    time.sleep(0.2)  # let it fall asleep in the kernel
    with shared.open("r+b") as f:
        mapping = mmap.mmap(f.fileno(), 4096)
        word = ctypes.c_uint32.from_buffer(mapping, 64)
        word.value = 5
        futex.wake(word)
        out, _ = waiter.communicate(timeout=20)  # well before its 30 s futex timeout
        del word
        mapping.close()
    assert out.strip() == "5"


def test_group_commit_waits_by_polling_where_futex_is_unavailable(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(futex, "_libc", None)  # as on macOS: waits poll instead
    log = FileLog(tmp_path, sync="always")
    log.append([Note(text="first")])
    with (tmp_path / ".synced").open("rb") as other:  # another "process" is syncing
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        threading.Timer(0.1, fcntl.flock, (other.fileno(), fcntl.LOCK_UN)).start()
        stored = log.append([Note(text="a"), Note(text="b")])  # waits for the lock's release
    assert [ev.seq for ev in stored] == [2, 3]
    assert log.verify().ok
