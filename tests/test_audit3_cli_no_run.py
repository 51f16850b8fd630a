"""`status` and `archive` on a workspace whose log has no run yet (a fresh init, a few notes)
printed 'run - at seq 0: phase -' and 'run (no run) (no outcome): …'. They now say there is no
run yet."""

from __future__ import annotations

from pathlib import Path

from tests.cli_helpers import swarmlog_in as _swarmlog


def test_status_and_archive_say_there_is_no_run_yet(tmp_path: Path) -> None:
    ws = tmp_path / "night"
    assert _swarmlog(ws, "init", "--no-detect").returncode == 0
    assert _swarmlog(ws, "note", "before the night").returncode == 0

    status = _swarmlog(ws, "status")
    assert status.returncode == 0, status
    first = status.stdout.splitlines()[0]
    assert first == "no run in the log yet (seq 1); start one with 'swarmlog run GOAL'", first

    archive = _swarmlog(ws, "archive")
    assert archive.returncode == 0, archive
    assert "(no run)" not in archive.stdout and "no outcome" not in archive.stdout, archive.stdout
    assert "no run in the log: 1 segment(s), last seq 1" in archive.stdout, archive.stdout
    assert "'night of" not in archive.stdout and "-m 'swarmlog event log'" in archive.stdout


def test_views_of_an_empty_log_print_no_dash_for_a_time(tmp_path: Path) -> None:
    ws = tmp_path / "night"
    assert _swarmlog(ws, "init", "--no-detect").returncode == 0
    report = _swarmlog(ws, "report")
    assert report.returncode == 0, report
    assert "(- UTC)" not in report.stdout and "| Started | not started |" in report.stdout
    assert _swarmlog(ws, "render").returncode == 0
    for name in ("team-state.md", "decisions.md", "report.md"):
        text = (ws / "memory" / name).read_text()
        assert "at seq 0. Derived file" in text, (name, text[:300])
