"""A usage error that argparse itself finds (a value of the wrong type, an unknown choice or
command, a missing argument) is one stderr line, like every other error, naming the value and
where the help is; it printed the whole usage block first (three to six lines)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli_helpers import one_error_line, swarmlog_process


def _swarmlog(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return swarmlog_process(*args, cwd=cwd, timeout=60)


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["log", "--after", "abc"], ["--after", "'abc'", "swarmlog log --help"]),
        (["log", "--after", "1e3"], ["--after", "'1e3'", "swarmlog log --help"]),
        (["append", "note", "--sync", "sometimes"], ["'sometimes'", "swarmlog append --help"]),
        (["route", "--lines", "many"], ["--lines", "'many'", "swarmlog route --help"]),
        (["nosuchcommand"], ["'nosuchcommand'", "swarmlog --help"]),
        ([], ["COMMAND", "swarmlog --help"]),
        (["note"], ["text", "swarmlog note --help"]),
        (["log", "--bogus"], ["--bogus", "swarmlog log --help"]),
        (["config", "check", "--file"], ["--file", "swarmlog config check --help"]),
    ],
)
def test_an_argparse_usage_error_is_one_line(tmp_path: Path, argv: list[str], needles: list[str]):
    done = _swarmlog(tmp_path, *argv)
    assert done.returncode == 2, done
    assert done.stdout == ""
    err = one_error_line(done.stderr)
    assert "usage:" not in err
    for needle in needles:
        assert needle in err, err


def test_help_still_prints_the_usage(tmp_path: Path) -> None:
    done = _swarmlog(tmp_path, "log", "--help")
    assert done.returncode == 0
    assert done.stdout.startswith("usage: swarmlog log")
