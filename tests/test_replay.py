"""Snapshots, ``swarmlog render``/``replay``/``status``/``report`` through ``cli.main``."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import msgspec
import pytest
from test_render_scenario import scripted

from swarmlog.cli import main
from swarmlog.events import CheckpointWritten, Note, TaskRouted
from swarmlog.log import FileLog
from swarmlog.render import make_environment
from swarmlog.replay import follow, register_check, register_fold_check
from swarmlog.snapshot import list_snapshots, load_state, newest_snapshot, write_snapshot
from swarmlog.state import project, state_digest
from swarmlog.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A workspace whose log holds the scripted night."""
    log = FileLog(tmp_path / "memory" / "events", sync="none")
    log.append([msgspec.structs.replace(e, seq=0) for e in scripted()])
    log.close()
    (tmp_path / "alerts").mkdir()
    return Workspace(tmp_path)


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "events" not in p.parts
    }


def test_render_recreates_identical_bytes_after_deleting_derived_files(ws, capsys):
    assert main(["--dir", str(ws.root), "render"]) == 0
    first = _tree(ws.root)
    assert (
        "memory/team-state.md" in first
        and "memory/snapshots/snapshot-000000000050.msgpack" in first
    )
    for path in ws.memory.glob("*.md"):
        path.unlink()
    for _seq, path in list_snapshots(ws.snapshots):
        path.unlink()
    assert main(["--dir", str(ws.root), "render"]) == 0
    assert _tree(ws.root) == first
    assert "nothing changed" not in capsys.readouterr().out


def test_damaged_or_outdated_snapshots_are_ignored_and_rebuilt(ws):
    log = FileLog(ws.events, create=False)
    truth = project(log.read())
    good = write_snapshot(ws.snapshots, project(scripted()[:20]))
    bad = write_snapshot(ws.snapshots, project(scripted()[:30]))
    data = bytearray(bad.read_bytes())
    data[-5] ^= 0xFF
    bad.write_bytes(bytes(data))
    old = ws.snapshots / "snapshot-000000000040.msgpack"
    envelope = msgspec.msgpack.decode(good.read_bytes())
    old.write_bytes(msgspec.msgpack.encode({**envelope, "schema": 0, "seq": 40}))
    state, reasons = load_state(log, ws.snapshots)
    assert state == truth
    assert len(reasons) == 2 and any("checksum" in r or "damaged" in r for r in reasons)
    assert any("schema" in r for r in reasons)
    snap, _ = newest_snapshot(ws.snapshots)
    assert snap is not None and snap.seq == 20 and good.exists()
    log.close()


def test_replay_until_from_snapshot_equals_from_zero(ws, tmp_path, capsys):
    assert main(["--dir", str(ws.root), "render"]) == 0
    write_snapshot(ws.snapshots, project(scripted()[:25]))
    outs = []
    for extra in ([], ["--from-snapshot"]):
        out = tmp_path / f"out{len(outs)}"
        args = ["--dir", str(ws.root), "replay", "--until", "37", "--out", str(out), *extra]
        assert main(args) == 0
        outs.append(_tree(out))
    assert outs[0] == outs[1]
    assert "memory/emergency.md" in outs[0]
    assert b"seq 37" in outs[0]["memory/team-state.md"]


def test_replay_until_a_time(ws, tmp_path, capsys):
    out = tmp_path / "then"
    args = ["--dir", str(ws.root), "--json", "replay", "--until", "2026-01-28T03:45:00Z"]
    assert main([*args, "--out", str(out)]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["seq"] == 37 and line["ts"] <= 1_769_572_300.0
    assert (out / "memory" / "team-state.md").exists()
    assert main(["--dir", str(ws.root), "replay", "--until", "yesterday"]) == 2


def test_replay_explain_tells_a_task_story_in_order(ws, capsys):
    assert main(["--dir", str(ws.root), "replay", "--explain", "T1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    kinds = [ln.split()[3] for ln in lines]
    assert kinds[:4] == ["task_submitted", "task_routed", "task_claimed", "task_started"]
    assert "task_completed" in kinds
    routed = next(ln for ln in lines if "task_routed" in ln)
    assert "qwen3:8b" in routed and "ineligible" in routed and "score=1.5" in routed
    seqs = [int(ln.split()[0]) for ln in lines]
    assert seqs == sorted(seqs)
    assert main(["--dir", str(ws.root), "replay", "--explain", "nope"]) == 1


def test_verify_passes_then_reports_checkpoint_snapshot_and_check_mismatches(ws, capsys):
    root = str(ws.root)
    assert main(["--dir", root, "render"]) == 0
    assert main(["--dir", root, "replay", "--verify"]) == 0
    assert "ok: folded 50 events" in capsys.readouterr().out

    log = FileLog(ws.events, create=False)
    before = project(log.read())
    log.append(
        [
            CheckpointWritten(checkpoint_id="C2", trigger="t", summary="s",
                              state_digest=state_digest(before)),
            CheckpointWritten(checkpoint_id="C3", trigger="t", summary="s", state_digest="0" * 64),
            TaskRouted(task_id="T9", model="qwen3:8b"),
        ]
    )  # fmt: skip
    log.close()
    unregister = register_check(
        "task_routed",
        lambda s, e: None if e.model != "qwen3:8b" else f"derived another model at {s.seq}",
    )
    seen: list[int] = []
    unregister_fold = register_fold_check(
        "task_routed", lambda n, e: n + 1, 0, lambda n, e: seen.append(n) and None
    )
    try:
        assert main(["--dir", root, "replay", "--verify"]) == 1
    finally:
        unregister()
        unregister_fold()
    out = capsys.readouterr().out
    assert "seq 52: checkpoint C3 records state digest" in out
    assert "C2" not in out
    assert "seq 53: task_routed: derived another model at 52" in out
    assert seen == [10, 20, 52]  # the private fold saw every event before each routing

    snap = ws.snapshots / "snapshot-000000000050.msgpack"
    data = bytearray(snap.read_bytes())
    data[-3] ^= 0xFF
    snap.write_bytes(bytes(data))
    assert main(["--dir", root, "replay", "--verify"]) == 1
    assert "snapshot snapshot-000000000050.msgpack unusable" in capsys.readouterr().out


def test_status_and_report(ws, capsys):
    assert main(["--dir", str(ws.root), "--json", "status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["seq"] == 50 and status["tasks"] == {"done": 2} and status["level"] == 0
    assert main(["--dir", str(ws.root), "status"]) == 0
    assert "run night-0128 at seq 50" in capsys.readouterr().out
    assert main(["--dir", str(ws.root), "report"]) == 0
    report = capsys.readouterr().out
    assert report.startswith("# Morning Report: night-0128") and "```mermaid\ngantt" in report


def test_follow_keeps_files_current_and_snapshots_at_exit(ws):
    stop = threading.Event()
    seen: list[int] = []
    env = make_environment(ws)
    thread = threading.Thread(
        target=follow,
        args=(ws, env),
        kwargs={"stop": stop, "on_render": lambda s, _c: seen.append(s.seq), "poll_s": 0.05},
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert seen == [50]
        log = FileLog(ws.events, create=False, sync="none")
        log.append([Note(text="late", actor="human")])
        log.close()
        while 51 not in seen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert 51 in seen
        assert "seq 51" in (ws.memory / "team-state.md").read_text()
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert list_snapshots(ws.snapshots)[0][0] == 51


def test_reading_the_tail_finds_the_start_mid_segment_and_across_segments(tmp_path):
    from swarmlog.events import TaskCompleted

    log = FileLog(tmp_path / "events", sync="none", segment_bytes=4096)
    decoy = TaskCompleted(task_id="T", agent="a", output={"a": 1, "seq": 31, "b": 2})
    log.append([Note(text=f"n{i}") if i != 20 else decoy for i in range(120)])
    for after in (0, 1, 30, 31, 77, 119, 120):
        assert [e.seq for e in log.read(after=after)] == list(range(after + 1, 121))
    snap_state = project(list(log.read())[:30])
    write_snapshot(tmp_path / "snaps", snap_state)
    state, reasons = load_state(log, tmp_path / "snaps")
    assert state == project(log.read()) and reasons == []
    log.close()


def test_a_snapshot_folded_from_another_log_is_not_applied(ws, tmp_path, capsys):
    from swarmlog.snapshot import anchor_at, load_snapshot

    assert main(["--dir", str(ws.root), "render"]) == 0  # snapshot at seq 50, anchored
    (seq, path), *_ = list_snapshots(ws.snapshots)
    assert seq == 50 and load_snapshot(path)[0].anchor
    # Another night of the same length (as another stream chosen with --log would be).
    other = Workspace(tmp_path / "other")
    log = FileLog(other.events, sync="none")
    log.append([msgspec.structs.replace(e, seq=0, ts=e.ts + 3600) for e in scripted()])
    other.snapshots.mkdir(parents=True)
    (other.snapshots / path.name).write_bytes(path.read_bytes())
    state, reasons = load_state(log, other.snapshots)
    assert state == project(log.read())  # not the first night's state
    assert len(reasons) == 1 and "folded from another log" in reasons[0]
    # A snapshot of its own is trusted.
    (other.snapshots / path.name).unlink()
    mine = project(list(log.read())[:30])
    write_snapshot(other.snapshots, mine, anchor=anchor_at(log, 30))
    assert load_state(log, other.snapshots) == (project(log.read()), [])
    log.close()
