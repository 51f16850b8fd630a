"""A snapshot never hides damage in the log before it (audit #5).

A command that starts from a snapshot reads only the log's tail. The snapshot marks the bytes it
was folded from (a CRC-32 per segment, and a sealed segment's stat), start-up checks them, and
damage there fails status/render/report with the same file:line error as reading from zero.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import msgspec
import pytest
from cli_helpers import copy_example_night

from swarmlog.cli import main
from swarmlog.errors import LogCorrupt
from swarmlog.events import Note, decode
from swarmlog.log import FileLog, list_segments
from swarmlog.log.framing import frame
from swarmlog.snapshot import list_snapshots, load_snapshot, load_state, write_snapshot
from swarmlog.state import project


@pytest.fixture
def night(tmp_path: Path) -> Path:
    """The committed example night, rendered: a snapshot at its last seq (474)."""
    ws = tmp_path / "night"
    copy_example_night(ws)
    assert main(["--dir", str(ws), "render"]) == 0
    assert [seq for seq, _ in list_snapshots(ws / "memory" / "snapshots")] == [474]
    return ws


def _segment(ws: Path) -> Path:
    return list_segments(ws / "memory" / "events")[0][1]


def _flip(path: Path, line: int, *, keep_mtime: bool = False) -> None:
    """XOR one byte in the middle of a line (1-based), as bit rot or a stray write would."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    starts = [0, *(i + 1 for i, b in enumerate(data) if b == 0x0A)]
    data[(starts[line - 1] + starts[line]) // 2] ^= 0x01
    mode = st.st_mode & 0o777
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    path.chmod(mode)
    if keep_mtime:  # ctime still moves: no tool sets it back
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _errors(ws: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, tuple[int, str]]:
    got = {}
    for command in ("status", "render", "report"):
        capsys.readouterr()
        code = main(["--dir", str(ws), command])
        got[command] = (code, capsys.readouterr().err)
    return got


def test_damage_before_the_snapshot_fails_the_views_as_without_one(
    night: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seg = _segment(night)
    _flip(seg, 200)
    with_snapshot = _errors(night, capsys)
    expected = f"swarmlog: error: {seg}:200: checksum mismatch;"
    for command, (code, err) in with_snapshot.items():
        assert code == 1 and err.startswith(expected) and len(err.splitlines()) == 1, command
    shutil.rmtree(night / "memory" / "snapshots")
    assert _errors(night, capsys) == with_snapshot  # exactly what reading from zero says
    # Writers need only the tail: a note is still taken (verify and doctor name the damage).
    assert main(["--dir", str(night), "note", "still writing"]) == 0
    assert main(["--dir", str(night), "verify"]) == 1


def test_a_sealed_segment_rewritten_in_place_is_noticed_by_its_stat(
    night: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--dir", str(night), "archive"]) == 0  # seals the segment, renders again
    (_seq, path), *_ = list_snapshots(night / "memory" / "snapshots")
    (mark,) = load_snapshot(path)[0].marks
    seg = _segment(night)
    st = seg.stat()
    assert (mark.first, mark.length, mark.ino, mark.mtime_ns) == (
        1,
        st.st_size,
        st.st_ino,
        st.st_mtime_ns,
    )
    assert main(["--dir", str(night), "status"]) == 0  # untouched: trusted by its stat
    _flip(seg, 17, keep_mtime=True)
    for command, (code, err) in _errors(night, capsys).items():
        assert code == 1 and err.startswith(f"swarmlog: error: {seg}:17: checksum mismatch"), (
            command
        )


def test_a_snapshot_written_after_the_damage_does_not_vouch_for_it(night: Path) -> None:
    events = night / "memory" / "events"
    snapshots = night / "memory" / "snapshots"
    log = FileLog(events, sync="none")
    state, reasons = load_state(log, snapshots)  # checks the marks; a writer carries them on
    assert reasons == [] and state.seq == 474
    _flip(_segment(night), 3)
    log.append([Note(text="a later event")])
    state = _fold_on(log, state)
    write_snapshot(snapshots, state, anchor="", log=log)  # as the renderer does, later
    assert list_snapshots(snapshots)[0][0] == 475
    with pytest.raises(LogCorrupt) as info:
        load_state(FileLog(events, create=False), snapshots)
    assert (info.value.path, info.value.line) == (str(_segment(night)), 3)
    # A process that marks those bytes for the first time checks their records instead.
    with pytest.raises(LogCorrupt) as info:
        write_snapshot(snapshots, state, log=FileLog(events, create=False))
    assert info.value.line == 3
    log.close()


def _fold_on(log: FileLog, state):  # type: ignore[no-untyped-def]
    from swarmlog.snapshot import fold_tail

    return fold_tail(log.read(after=state.seq), state)


def _segmented(folder: Path) -> FileLog:
    """A log of 200 notes in 4 KiB segments (sealed, but for the newest)."""
    log = FileLog(folder, sync="none", segment_bytes=4096)
    for i in range(0, 200, 10):
        log.append([Note(text=f"note {j}") for j in range(i, i + 10)])
    assert len(list_segments(folder)) > 3
    return log


def test_a_snapshot_without_marks_has_every_record_before_it_checked(tmp_path: Path) -> None:
    log = _segmented(tmp_path / "events")
    write_snapshot(tmp_path / "snaps", project(list(log.read())[:150]))  # no log: no marks
    assert load_state(log, tmp_path / "snaps") == (project(log.read()), [])
    (_first, seg), *_ = list_segments(tmp_path / "events")
    _flip(seg, 5)
    with pytest.raises(LogCorrupt) as info:
        load_state(FileLog(tmp_path / "events", create=False), tmp_path / "snaps")
    assert (info.value.path, info.value.line, info.value.problem) == (
        str(seg),
        5,
        "checksum mismatch",
    )


def test_records_cut_off_a_sealed_segment_are_noticed(tmp_path: Path) -> None:
    log = _segmented(tmp_path / "events")
    state = project(list(log.read())[:150])
    write_snapshot(tmp_path / "snaps", state, log=log)
    (_first, seg), *_ = list_segments(tmp_path / "events")
    lines = seg.read_bytes().splitlines(keepends=True)
    seg.chmod(0o644)
    seg.write_bytes(b"".join(lines[:-1]))  # its last record gone
    seg.chmod(0o444)
    with pytest.raises(LogCorrupt) as info:
        load_state(FileLog(tmp_path / "events", create=False), tmp_path / "snaps")
    assert info.value.path == str(seg) and info.value.line == len(lines)
    assert "cut off" in info.value.problem


def test_a_touched_but_intact_segment_is_hashed_again_and_trusted(tmp_path: Path) -> None:
    log = _segmented(tmp_path / "events")
    write_snapshot(tmp_path / "snaps", project(list(log.read())[:150]), log=log)
    (_first, seg), *_ = list_segments(tmp_path / "events")
    os.utime(seg, ns=(1, 1))  # metadata only: the bytes are the same
    reader = FileLog(tmp_path / "events", create=False)
    assert load_state(reader, tmp_path / "snaps") == (project(log.read()), [])
    # The writer's next snapshot records the stat that now goes with those bytes.
    (mark, *_) = reader.fingerprint(150)
    assert mark.first == 1 and mark.mtime_ns == 1 and mark.ino == seg.stat().st_ino


def test_an_intact_log_with_other_bytes_is_another_log(night: Path) -> None:
    # Line 200 rewritten as a valid record with another value: every record checks, but this
    # is not the log the snapshot was folded from, so it is rebuilt from the log, not trusted.
    seg = _segment(night)
    lines = seg.read_bytes().splitlines(keepends=True)
    event = decode(lines[199][: lines[199].index(b',"crc":')] + b"}")
    lines[199] = frame(msgspec.structs.replace(event, actor=event.actor + "-x"))
    seg.write_bytes(b"".join(lines))
    log = FileLog(night / "memory" / "events", create=False)
    state, reasons = load_state(log, night / "memory" / "snapshots")
    assert state == project(log.read())
    assert len(reasons) == 1 and "folded from another log" in reasons[0]
    assert f"segment {seg.name} is not the one it was folded from" in reasons[0]


def test_marks_cover_exactly_the_records_up_to_the_seq(tmp_path: Path) -> None:
    import zlib

    # Segments large enough that finding a record's end bisects (64 KiB windows).
    log = FileLog(tmp_path, sync="none", segment_bytes=400_000)
    for i in range(0, 6000, 500):
        log.append([Note(text=f"note {j} " + "x" * (j % 97)) for j in range(i, i + 500)])
    segments = list_segments(tmp_path)
    assert len(segments) >= 3
    for seq in (1, 2, 499, 500, 501, 2345, segments[1][0] - 1, segments[1][0], 5999, 6000):
        marks = FileLog(tmp_path, create=False).fingerprint(seq)
        assert [m.first for m in marks] == [f for f, _ in segments if f <= seq]
        last = marks[-1]
        data = (tmp_path / f"{last.first:012d}.ndjson").read_bytes()
        lines = data.splitlines(keepends=True)
        assert last.length == sum(map(len, lines[: seq - last.first + 1]))
        assert last.crc == zlib.crc32(data[: last.length])
        for mark in marks[:-1]:
            whole = (tmp_path / f"{mark.first:012d}.ndjson").read_bytes()
            assert (mark.length, mark.crc) == (len(whole), zlib.crc32(whole)) and mark.ino


def test_replay_until_a_time_from_a_snapshot_checks_the_bytes_before_it(
    night: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import datetime as dt
    import math

    last = list(FileLog(night / "memory" / "events", create=False).read())[-1]
    when = dt.datetime.fromtimestamp(math.ceil(last.ts), tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    args = ["--dir", str(night), "replay", "--until", when, "--from-snapshot"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    _flip(_segment(night), 100)
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "b")]) == 1
    assert capsys.readouterr().err.startswith(
        f"swarmlog: error: {_segment(night)}:100: checksum mismatch"
    )
