"""Waiting for a 32-bit word in a shared file mapping to change, across processes.

Group commit needs writers to sleep until another process's sync finishes. A blocking ``flock``
can do that, but the kernel wakes every waiter on each release and only one may take the lock, so
with eight writers most wake-ups are wasted and each covered writer still queues for the lock just
to learn that it is covered. A futex on a word in the shared ``.synced`` mapping wakes every
sleeper once, when the word changes, and lets each read the watermark without any lock.

On Linux (x86-64, arm64) this calls ``futex(2)`` through libc; elsewhere, or if the call fails,
``wait`` sleeps a short while instead, which is correct (callers re-check their condition) and
only slower.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import platform
import sys
import time

__all__ = ["available", "wait", "wake"]

_FUTEX_WAIT = 0  # shared (not FUTEX_PRIVATE_FLAG): the word lives in a file mapping
_FUTEX_WAKE = 1
_SYS_FUTEX = {"x86_64": 202, "amd64": 202, "aarch64": 98, "arm64": 98}.get(platform.machine())
_FALLBACK_SLEEP_S = 0.0002
_WAKE_ALL = 0x7FFFFFFF
# The word already changed, a signal, or the timeout: all mean "look again".
_EXPECTED_ERRNOS = (errno.EAGAIN, errno.EINTR, errno.ETIMEDOUT)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _load() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux") or _SYS_FUTEX is None:
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


_libc = _load()


def available() -> bool:
    """Whether waits sleep in the kernel (rather than polling)."""
    return _libc is not None


def wait(word: ctypes.c_uint32, expected: int, timeout_s: float) -> None:
    """Sleep while ``word`` holds ``expected``, at most ``timeout_s``; may return early.

    Returns at once if the word already differs. Spurious returns are allowed: the caller
    re-checks what it waits for.
    """
    if _libc is None:
        time.sleep(_FALLBACK_SLEEP_S)
        return
    timeout = _Timespec(int(timeout_s), int((timeout_s % 1) * 1e9))
    addr = ctypes.c_void_p(ctypes.addressof(word))
    rc = _libc.syscall(_SYS_FUTEX, addr, _FUTEX_WAIT, expected, ctypes.byref(timeout), None, 0)
    if rc != 0 and ctypes.get_errno() not in _EXPECTED_ERRNOS:
        time.sleep(_FALLBACK_SLEEP_S)  # e.g. ENOSYS under a sandbox: poll instead


def wake(word: ctypes.c_uint32) -> None:
    """Wake every process sleeping in ``wait`` on ``word``."""
    if _libc is not None:
        addr = ctypes.c_void_p(ctypes.addressof(word))
        _libc.syscall(_SYS_FUTEX, addr, _FUTEX_WAKE, _WAKE_ALL, None, None, 0)
