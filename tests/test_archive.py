"""``swarmlog archive`` and ``FileLog.seal``: a closed night is sealed, rendered and committable."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from swarmlog.archive import ArchiveRefused, archive
from swarmlog.cli import main
from swarmlog.events import ConfigLoaded, Note, PhaseEntered, RunEnded, RunStarted
from swarmlog.log import FileLog, list_segments
from swarmlog.workspace import Workspace

T0 = 1_800_000_000.0


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_seal_makes_the_segment_read_only_and_the_next_append_starts_a_new_one(tmp_path: Path):
    log = FileLog(tmp_path / "events")
    assert log.seal() is None  # nothing to seal in an empty log
    log.append([Note(text="a"), Note(text="b")])
    sealed = log.seal()
    first = list_segments(tmp_path / "events")[0][1]
    assert sealed == str(first) and _mode(first) == 0o444
    frozen = first.read_bytes()
    other = FileLog(tmp_path / "events")  # another process's handle
    assert [e.seq for e in other.append([Note(text="c")])] == [3]
    log.append([Note(text="d")])
    segments = list_segments(tmp_path / "events")
    assert [s for s, _ in segments] == [1, 3]
    assert first.read_bytes() == frozen
    assert [e.seq for e in FileLog(tmp_path / "events").read()] == [1, 2, 3, 4]
    assert log.verify().ok and log.verify().segments == 2
    log.close()
    other.close()


def _night(ws: Path, *, ended: bool) -> None:
    assert main(["init", "--dir", str(ws), "--no-detect"]) == 0
    log = FileLog(ws / "memory" / "events", clock=lambda: T0)
    events = [
        RunStarted(goal="ship it", run="r1"),
        ConfigLoaded(config={}, run="r1"),
        PhaseEntered(phase="planning", expected_s=60, run="r1"),
    ]
    if ended:
        events.append(RunEnded(outcome="completed", run="r1"))
    log.append(events)
    log.close()


def test_archive_refuses_an_open_run_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    _night(tmp_path, ended=False)
    capsys.readouterr()
    assert main(["archive", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "run r1 is still open in phase planning" in err and "--force" in err
    assert all(_mode(p) == 0o644 for _, p in list_segments(tmp_path / "memory" / "events"))
    with pytest.raises(ArchiveRefused):
        archive(Workspace(tmp_path))
    done = archive(Workspace(tmp_path), force=True)
    assert done.sealed and done.outcome == "open (forced)"
    assert _mode(Path(done.sealed)) == 0o444


def test_archive_seals_renders_and_prints_the_git_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    _night(tmp_path, ended=True)
    capsys.readouterr()
    assert main(["archive", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    segment = list_segments(tmp_path / "memory" / "events")[0][1]
    assert f"sealed {segment}" in out
    assert "run r1 (completed): 1 segment(s), last seq 4" in out
    assert "git add swarmlog.toml .gitattributes memory alerts" in out
    assert _mode(segment) == 0o444
    team_state = tmp_path / "memory" / "team-state.md"
    report = tmp_path / "memory" / "report.md"
    assert team_state.exists() and report.exists()
    assert list((tmp_path / "memory" / "snapshots").iterdir())
    rendered = {p: p.read_bytes() for p in (team_state, report)}
    # Committable: the log verifies, a replay re-derives it, a render reproduces the same bytes.
    assert main(["verify", "--dir", str(tmp_path)]) == 0
    assert main(["replay", "--verify", "--dir", str(tmp_path)]) == 0
    assert main(["render", "--dir", str(tmp_path)]) == 0
    assert {p: p.read_bytes() for p in rendered} == rendered
    # Archiving again changes nothing; the next night appends to a new segment.
    capsys.readouterr()
    assert main(["archive", "--dir", str(tmp_path), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["sealed"] is None and again["last_seq"] == 4
    frozen = segment.read_bytes()
    log = FileLog(tmp_path / "memory" / "events")
    log.append([RunStarted(goal="night 2", run="r2")])
    log.close()
    assert segment.read_bytes() == frozen
    assert [s for s, _ in list_segments(tmp_path / "memory" / "events")] == [1, 5]
    assert main(["verify", "--dir", str(tmp_path)]) == 0


def test_archive_refuses_a_damaged_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    _night(tmp_path, ended=True)
    segment = list_segments(tmp_path / "memory" / "events")[0][1]
    data = bytearray(segment.read_bytes())
    data[10] ^= 0x01
    segment.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["archive", "--dir", str(tmp_path), "--force"]) == 1
    assert "nothing was sealed" in capsys.readouterr().err
    assert _mode(segment) == 0o644


def test_an_archived_night_commits_without_process_local_files(tmp_path: Path):
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    _night(tmp_path, ended=True)
    (tmp_path / "memory" / "logs").mkdir()
    (tmp_path / "memory" / "logs" / "builder.log").write_text("process output\n")
    assert main(["archive", "--dir", str(tmp_path)]) == 0
    subprocess.run([git, "init", "-q", str(tmp_path)], check=True)
    subprocess.run([git, "-C", str(tmp_path), "add", "memory", "alerts"], check=True)
    listed = subprocess.run(
        [git, "-C", str(tmp_path), "ls-files", "--cached"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert "memory/events/000000000001.ndjson" in listed
    assert {"memory/team-state.md", "memory/report.md", "memory/.gitignore"} <= set(listed)
    assert not [f for f in listed if f.endswith((".lock", ".synced")) or "/logs/" in f]
    attrs = subprocess.run(
        [git, "-C", str(tmp_path), "check-attr", "diff", "memory/events/000000000001.ndjson"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert attrs.strip().endswith("diff: unset")  # .gitattributes keeps diffs readable
