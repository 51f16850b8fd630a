"""SWARMLOG_HOME (or --dir) naming a file: every command says so, naming where the path came from.
Before, `init` blamed a --dir that was never given, and the other commands said there was no event
log and to run 'swarmlog init', which cannot work there."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli_helpers import one_error_line, swarmlog_process


def _swarmlog(cwd: Path, *args: str, home: Path | None) -> subprocess.CompletedProcess[str]:
    env = {"SWARMLOG_HOME": str(home)} if home is not None else {}
    return swarmlog_process(*args, cwd=cwd, env=env, timeout=60)


COMMANDS = [
    ["init", "--no-detect"],
    ["note", "hello"],
    ["status"],
    ["log"],
    ["render"],
    ["verify"],
    ["config", "check"],
    ["hw"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: a[0])
def test_swarmlog_home_naming_a_file(tmp_path: Path, argv: list[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    done = _swarmlog(tmp_path, *argv, home=afile)
    assert done.returncode == 1, done
    err = one_error_line(done.stderr)
    assert f"SWARMLOG_HOME={afile} is a file, not a folder" in err, err
    assert "--dir" in err and "swarmlog init" not in err, err
    assert afile.read_text() == "mine\n"


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: a[0])
def test_dir_naming_a_file_is_a_usage_error(tmp_path: Path, argv: list[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    done = _swarmlog(tmp_path, *argv, "--dir", str(afile), home=None)
    assert done.returncode == 2, done
    err = one_error_line(done.stderr)
    assert f"--dir {afile} is a file, not a folder" in err, err
    assert afile.read_text() == "mine\n"


def test_swarmlog_home_naming_a_missing_folder_still_works(tmp_path: Path) -> None:
    home = tmp_path / "new" / "night"
    assert _swarmlog(tmp_path, "init", "--no-detect", home=home).returncode == 0
    assert _swarmlog(tmp_path, "note", "hi", home=home).stdout == "1\n"
