"""Commands that only read leave the log's files exactly as they found them (audit #6).

A torn tail is a record still being written or one a crash left: readers stop before it; only a
writer (an append, under the lock) or 'swarmlog repair' cuts it, keeping what it removed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import copy_example_night

from swarmlog.cli import main
from swarmlog.log import FileLog, list_segments

TORN = 30  # bytes cut off the end, as `truncate -s -30` does


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def torn_night(tmp_path: Path) -> Path:
    """The committed example night, rendered (a snapshot at its last seq), then its last record
    torn: the snapshot is now ahead of the log's complete records."""
    ws = tmp_path / "night"
    copy_example_night(ws)
    assert main(["--dir", str(ws), "render"]) == 0
    assert [p.name for p in (ws / "memory" / "snapshots").iterdir()] == [
        "snapshot-000000000474.msgpack"
    ]
    _first, seg = list_segments(ws / "memory" / "events")[-1]
    os.truncate(seg, seg.stat().st_size - TORN)
    return ws


READ_ONLY = [
    ["status"],
    ["status", "--json"],
    ["render"],
    ["report"],
    ["doctor", "--timeout", "0.2"],
    ["replay", "--verify"],
    ["log"],
    ["log", "--json"],
    ["verify"],
]


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_a_read_only_command_leaves_a_torn_tail_where_it_is(
    torn_night: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    events = torn_night / "memory" / "events"
    before = _files(events)
    main(["--dir", str(torn_night), *command])
    capsys.readouterr()
    assert _files(events) == before  # no cut, no .removed-N copy, no .lock or .synced
    # So the writer's repair still finds it, and says where the bytes went.
    assert main(["--dir", str(torn_night), "repair"]) == 0
    seg = events / "000000000001.ndjson"
    kept = events / "000000000001.ndjson.removed-1"
    torn = len(before[seg.name]) - before[seg.name].rfind(b"\n") - 1
    assert capsys.readouterr().out.startswith(f"removed {torn} bytes from {seg}; kept in {kept}")
    assert seg.read_bytes() + kept.read_bytes() == before[seg.name]
    assert seg.read_bytes().endswith(b"\n")


def test_readers_stop_before_the_torn_record(
    torn_night: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--dir", str(torn_night), "status", "--json"]) == 0
    assert '"seq":473' in capsys.readouterr().out
    log = FileLog(torn_night / "memory" / "events", create=False)
    assert log.last_seq() == 473 and [e.seq for e in log.read()][-1] == 473
    assert log.verify().torn_tail_bytes > 0
    log.close()


@pytest.mark.parametrize("command", [["status"], ["render"], ["report"]], ids=" ".join)
def test_the_stale_snapshot_is_reported_once_with_the_prefix(
    torn_night: Path, command: list[str]
) -> None:
    # A real process: under pytest the logging plugin would swallow a bare logging warning.
    done = subprocess.run(
        [sys.executable, "-m", "swarmlog", "--dir", str(torn_night), *command],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("snapshot at seq 474 is ahead of the log") == 1, done.stderr
    assert all(x.startswith("swarmlog: warning: ") for x in done.stderr.splitlines()), done.stderr


def test_replay_verify_reports_a_stale_snapshot_as_such_not_as_a_mismatch(
    torn_night: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--dir", str(torn_night), "replay", "--verify"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == "ok: folded 473 events"
    assert "mismatch" not in captured.out
    (line,) = captured.err.splitlines()
    assert line.startswith("swarmlog: warning: snapshot at seq 474 is past the log's end")
    assert "not compared" in line and "swarmlog verify" in line


def test_the_next_append_cuts_the_torn_tail_and_keeps_it(
    torn_night: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = torn_night / "memory" / "events"
    torn = (events / "000000000001.ndjson").read_bytes()
    assert main(["--dir", str(torn_night), "note", "after the crash"]) == 0
    assert capsys.readouterr().out == "474\n"
    kept = (events / "000000000001.ndjson.removed-1").read_bytes()
    assert torn.endswith(kept) and not kept.endswith(b"\n")
    assert main(["--dir", str(torn_night), "verify"]) == 0


# The same contract at the library level


def test_last_seq_changes_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert FileLog(empty, create=False).last_seq() == 0
    assert list(empty.iterdir()) == []  # no segment, no .lock, no .synced

    folder = tmp_path / "events"
    writer = FileLog(folder, sync="none")
    writer.append([_note("a"), _note("b")])
    writer.seal()  # the newest segment is sealed: a reader must not start the next one
    writer.close()
    before = _files(folder)
    reader = FileLog(folder, create=False)
    assert reader.last_seq() == 2
    assert _files(folder) == before


def test_last_seq_does_not_count_or_cut_a_torn_tail(tmp_path: Path) -> None:
    log = FileLog(tmp_path, sync="none")
    log.append([_note("a"), _note("b")])
    (_, seg), *_ = list_segments(tmp_path)
    with open(seg, "ab") as fh:
        fh.write(b'{"kind":"note","text":"half-wr')
    before = _files(tmp_path)
    for handle in (log, FileLog(tmp_path, create=False)):
        assert handle.last_seq() == 2
    assert _files(tmp_path) == before
    assert log.append([_note("c")])[0].seq == 3  # the writer cuts it, under the lock
    assert (tmp_path / f"{seg.name}.removed-1").read_bytes() == b'{"kind":"note","text":"half-wr'


def _note(text: str):  # type: ignore[no-untyped-def]
    from swarmlog.events import Note

    return Note(text=text)
