"""`--log` (or SWARMLOG_LOG) naming something that is not a log: 'no event log at http:/x; run
'swarmlog init' or pass --dir' mangled the URL and gave advice that cannot help (init makes a
workspace's log, not that one, and --dir does not override --log). Now one line naming the option
and the value, and what a log address looks like."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli_helpers import one_error_line, swarmlog_process


def _swarmlog(ws: Path, *args: str, env_log: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"SWARMLOG_LOG": env_log} if env_log is not None else {}
    return swarmlog_process(*args, "--dir", str(ws), env=env, timeout=60)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    ws = tmp_path / "night"
    assert _swarmlog(ws, "init", "--no-detect").returncode == 0
    assert _swarmlog(ws, "note", "mine").returncode == 0
    return ws


@pytest.mark.parametrize("value", ["http://x", "/nonexistent/events", "FILE"])
def test_log_option_naming_no_log(ws: Path, tmp_path: Path, value: str) -> None:
    if value == "FILE":
        value = str(tmp_path / "afile")
        Path(value).write_text("x\n")
    done = _swarmlog(ws, "log", "--log", value)
    assert done.returncode == 2, done
    err = one_error_line(done.stderr)
    assert f"--log {value!r}" in err and "nats://" in err and "memory/events" in err, err
    assert "swarmlog init" not in err, err


def test_swarmlog_log_naming_no_log(ws: Path) -> None:
    done = _swarmlog(ws, "status", env_log="http://x")
    assert done.returncode == 1, done
    err = one_error_line(done.stderr)
    assert "SWARMLOG_LOG='http://x'" in err and "nats://" in err, err


def test_log_option_naming_a_real_events_folder_still_works(ws: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    done = _swarmlog(other, "log", "--log", str(ws / "memory" / "events"))
    assert done.returncode == 0, done
    assert "text=mine" in done.stdout
