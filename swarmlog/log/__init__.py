"""The event log: the only source of truth. File-backed for one host, in memory for tests."""

from __future__ import annotations

from swarmlog.log.file import FileLog, FileReader, Sync, list_segments
from swarmlog.log.memory import MemoryLog, MemoryReader
from swarmlog.log.protocol import EventLog, Problem, Reader, RepairReport, VerifyReport

__all__ = [
    "EventLog",
    "FileLog",
    "FileReader",
    "MemoryLog",
    "MemoryReader",
    "Problem",
    "Reader",
    "RepairReport",
    "Sync",
    "VerifyReport",
    "list_segments",
]
