"""``swarmlog render`` into folders it cannot write: one line naming the path and what to do,
exit 1, no traceback (audit #7, the render part)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import copy_example_night

from swarmlog.cli import main


@pytest.fixture
def night(tmp_path: Path) -> Path:
    ws = tmp_path / "night"
    copy_example_night(ws)
    return ws


def _unprivileged() -> list[str]:
    """A prefix that runs a command without root's power to write anywhere."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root without setpriv: a folder's mode cannot stop this process")
    return [setpriv, "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", "--"]


@pytest.fixture
def read_only(night: Path) -> Iterator[list[Path]]:
    """Folders made read-only for the test (given back their mode afterwards)."""
    folders: list[Path] = []
    yield folders
    for folder in folders:
        folder.chmod(0o755)


def _render(ws: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_unprivileged(), sys.executable, "-m", "swarmlog", "--dir", str(ws), "render"],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("folder", ["memory", "memory/snapshots", "alerts"])
def test_render_into_a_read_only_folder_says_which_and_what_to_do(
    night: Path, read_only: list[Path], folder: str
) -> None:
    # A rendered night (an alert file, a snapshot), then an alert removed from the log's view:
    # the next render must rewrite memory/, write a snapshot and delete the stale alert file.
    assert main(["--dir", str(night), "note", "one more event"]) == 0
    assert main(["--dir", str(night), "render"]) == 0
    (night / "alerts").mkdir(exist_ok=True)
    stale = night / "alerts" / "ALERT-20260101T000000Z-1.md"
    stale.write_text("from another night\n")
    assert main(["--dir", str(night), "note", "and another"]) == 0
    target = night / folder
    target.mkdir(parents=True, exist_ok=True)
    target.chmod(0o555)
    read_only.append(target)
    done = _render(night)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    verb = "remove" if folder == "alerts" else "write"  # the stale alert file must go
    assert line.startswith(f"swarmlog: error: cannot {verb} {target}/")
    assert "Permission denied" in line
    assert line.endswith(
        f"make {target} writable for this user (check its owner and mode) and retry"
    )


def test_a_file_where_the_snapshot_folder_belongs(
    night: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (night / "memory" / "snapshots").write_text("not a folder\n")
    assert main(["--dir", str(night), "render"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"swarmlog: error: cannot write {night}/memory/snapshots/snapshot-")
    assert "in the way" in err and len(err.splitlines()) == 1
