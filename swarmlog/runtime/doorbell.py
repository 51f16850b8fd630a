"""A doorbell on the log folder: wakes an asyncio loop when a file changes.

It is only a hint. Readers always read from their own offset, and every wait has a timeout, so a
coalesced or missed notification costs latency, never an event.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from types import TracebackType

import watchfiles

__all__ = ["Doorbell"]


class Doorbell:
    """``async with Doorbell(folder) as bell: await bell.wait(timeout)``."""

    def __init__(self, folder: Path, *, step_ms: int = 2) -> None:
        self.folder = folder
        self.step_ms = step_ms
        self._rang = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Doorbell:
        self._task = asyncio.create_task(self._watch())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _watch(self) -> None:
        async for _ in watchfiles.awatch(
            self.folder,
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
