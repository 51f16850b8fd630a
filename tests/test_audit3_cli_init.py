"""`swarmlog init` on a disk that fills up while it writes: it leaves no half-written file that a
later `init` (which never overwrites) would keep, and says so on one line."""

from __future__ import annotations

import resource
import signal
import subprocess
from pathlib import Path

from tests.cli_helpers import one_error_line, swarmlog_process


def _swarmlog(*args: str, max_file_bytes: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:  # in the child: files larger than this fail with EFBIG, as on a full disk
        if max_file_bytes is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    env = {"PYTHONDONTWRITEBYTECODE": "1"}
    return swarmlog_process(*args, env=env, timeout=60, preexec_fn=limit)


def test_init_that_cannot_finish_the_config_leaves_none_behind(tmp_path: Path) -> None:
    ws = tmp_path / "night"
    done = _swarmlog("init", "--no-detect", "--dir", str(ws), max_file_bytes=1000)
    assert done.returncode == 1, done
    line = one_error_line(done.stderr)
    assert "swarmlog.toml" in line and "None" not in line, line
    # Nothing half-written: the config is either whole or absent (here: absent).
    assert not (ws / "swarmlog.toml").exists()
    assert [p.name for p in ws.iterdir() if p.name.startswith(".swarmlog.toml")] == []

    # Once there is room, init writes the whole config, and it loads.
    again = _swarmlog("init", "--no-detect", "--dir", str(ws))
    assert again.returncode == 0, again
    assert f"created {ws / 'swarmlog.toml'}" in again.stdout
    check = _swarmlog("config", "check", "--dir", str(ws))
    assert check.returncode == 0, check


def test_init_still_never_overwrites(tmp_path: Path) -> None:
    ws = tmp_path / "night"
    ws.mkdir()
    (ws / "swarmlog.toml").write_text("# mine\n")
    done = _swarmlog("init", "--no-detect", "--dir", str(ws))
    assert done.returncode == 0, done
    assert (ws / "swarmlog.toml").read_text() == "# mine\n"
    assert [p.name for p in ws.iterdir() if ".tmp" in p.name] == []
