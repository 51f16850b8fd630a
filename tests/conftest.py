"""Shared fixtures: a clean environment, the anyio backend, and the event-log contract ``store``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from nats_fixtures import nats_log_factory, nats_server  # noqa: F401 - the "nats" store

from swarmlog.log import FileLog, MemoryLog

# Environment


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Strip every ``SWARMLOG_*`` variable so the developer's shell cannot steer a test."""
    for name in list(os.environ):
        if name.startswith("SWARMLOG_"):
            monkeypatch.delenv(name)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# The event log

FIXED_TS = 1_795_000_000.0


@pytest.fixture(params=["memory", "file", "nats"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MemoryLog | FileLog]:
    """Every ``EventLog`` backend, so one contract suite runs against each (clock fixed)."""
    log: MemoryLog | FileLog
    if request.param == "memory":
        log = MemoryLog(clock=lambda: FIXED_TS)
    elif request.param == "file":
        log = FileLog(tmp_path / "events", clock=lambda: FIXED_TS)
    else:  # a fresh stream on a real nats-server (skips when it is not installed)
        log = request.getfixturevalue("nats_log_factory")(clock=lambda: FIXED_TS)
    try:
        yield log
    finally:
        log.close()
