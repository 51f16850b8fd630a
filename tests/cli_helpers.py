"""What the CLI tests share: a command in a workspace, its one error line, the log's last seq and
a copy of the committed example night."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from swarmlog.cli import main
from swarmlog.log import FileLog

REPO = Path(__file__).resolve().parent.parent


def run(ws: Path, *args: str) -> int:
    """Run one ``swarmlog`` command in the workspace ``ws``; return its exit code."""
    return main([*args, "--dir", str(ws)])


def swarmlog_process(
    *args: str,
    cwd: Path | None = None,
    stdin: str | None = None,
    env: Mapping[str, str | None] = {},
    timeout: float = 120,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m swarmlog ARGS`` in a child process of this checkout, as a user would.

    ``SWARMLOG_HOME`` and ``SWARMLOG_LOG`` are cleared unless ``env`` sets them; a name that
    ``env`` maps to None is removed.
    """
    full = {**os.environ, "PYTHONPATH": str(REPO)}
    for name in ("SWARMLOG_HOME", "SWARMLOG_LOG"):
        full.pop(name, None)
    for name, value in env.items():
        if value is None:
            full.pop(name, None)
        else:
            full[name] = value
    return subprocess.run(
        [sys.executable, "-m", "swarmlog", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full,
        cwd=cwd,
        preexec_fn=preexec_fn,
    )


def swarmlog_in(ws: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run one ``swarmlog`` command in a child process, in the workspace ``ws``."""
    return swarmlog_process(*args, "--dir", str(ws), stdin=stdin)


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
