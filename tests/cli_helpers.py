"""What the CLI tests share: a command in a workspace, its one error line, the log's last seq and
a copy of the committed example night."""

from __future__ import annotations

import shutil
from pathlib import Path

from swarmlog.cli import main
from swarmlog.log import FileLog

REPO = Path(__file__).resolve().parent.parent


def run(ws: Path, *args: str) -> int:
    """Run one ``swarmlog`` command in the workspace ``ws``; return its exit code."""
    return main([*args, "--dir", str(ws)])


def one_error_line(err: str) -> str:
    """Assert that stderr holds exactly one explained error line, no traceback; return it."""
    assert err.startswith("swarmlog: error: "), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def last_seq(ws: Path) -> int:
    log = FileLog(ws / "memory" / "events")
    try:
        return log.last_seq()
    finally:
        log.close()


def copy_example_night(ws: Path) -> Path:
    """Copy the committed example night's log (474 events) into ``ws``; return ``ws``."""
    (ws / "memory" / "events").mkdir(parents=True)
    for segment in sorted((REPO / "memory" / "events").glob("*.ndjson")):
        shutil.copy(segment, ws / "memory" / "events" / segment.name)
    return ws
