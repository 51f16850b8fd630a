"""`swarmlog replay --until TIME` with a time before the log's first event rendered the empty
state and said only 'state at seq 0 rendered into …', as if the night had been empty (README's
own example did this). It now warns on one stderr line when --until is before the first event,
and says nothing more otherwise."""

from __future__ import annotations

from pathlib import Path

from tests.cli_helpers import copy_example_night
from tests.cli_helpers import swarmlog_in as _swarmlog


def test_replay_until_before_the_first_event_says_so(tmp_path: Path) -> None:
    ws = copy_example_night(tmp_path / "ws")
    done = _swarmlog(ws, "replay", "--until", "2026-11-23T03:10:00Z", "--out", str(tmp_path / "o"))
    assert done.returncode == 0, done
    assert done.stdout.startswith("state at seq 0 rendered into "), done.stdout
    assert done.stderr.count("\n") == 1, done.stderr
    warning = done.stderr
    assert warning.startswith("swarmlog: warning: --until 2026-11-23T03:10:00Z is before"), warning
    assert "seq 1 at 2026-11-23T09:43:08Z" in warning, warning


def test_replay_until_inside_the_night_warns_nothing(tmp_path: Path) -> None:
    ws = copy_example_night(tmp_path / "ws")
    done = _swarmlog(ws, "replay", "--until", "2026-11-23T09:43:25Z", "--out", str(tmp_path / "o"))
    assert done.returncode == 0, done
    assert done.stderr == ""
    assert not done.stdout.startswith("state at seq 0 ")
