"""The log commands as a user runs them: init, append, note, log, verify, repair."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from swarmlog.cli import main
from swarmlog.log import FileLog, list_segments


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    assert main(["init", "--dir", str(tmp_path)]) == 0
    return tmp_path


def run(ws: Path, *args: str) -> int:
    return main([*args, "--dir", str(ws)])


def segment(ws: Path) -> Path:
    return list_segments(ws / "memory" / "events")[-1][1]


def test_init_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["init", "--dir", str(tmp_path)]) == 0
    assert "created" in capsys.readouterr().out
    (tmp_path / "swarmlog.toml").write_text("# mine\n")
    assert main(["init", "--dir", str(tmp_path)]) == 0
    assert "nothing changed" in capsys.readouterr().out
    assert (tmp_path / "swarmlog.toml").read_text() == "# mine\n"


def test_append_and_note_print_the_seq(ws: Path, capsys: pytest.CaptureFixture[str]):
    capsys.readouterr()
    assert run(ws, "note", "the night begins") == 0
    assert run(ws, "append", "task_submitted", '{"task_id": "t1", "title": "lint"}') == 0
    assert run(ws, "append", "note", '{"text": "j"}', "--json", "--sync", "none") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["1", "2"]
    assert json.loads(out[2]) == {"seq": 3, "kind": "note"}
    events = list(FileLog(ws / "memory" / "events").read())
    assert events[0].actor == "human" and events[1].title == "lint"  # type: ignore[union-attr]


def test_append_stdin_appends_each_line(
    ws: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    lines = '{"kind": "note", "text": "a"}\n\n{"kind": "note", "text": "b", "key": "k"}\n'
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    capsys.readouterr()
    assert run(ws, "append", "--stdin", "--expect-seq", "0") == 0
    assert capsys.readouterr().out.split() == ["1", "2"]
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"kind": "note", "text": "c", "key": "k"}\n'))
    assert run(ws, "append", "--stdin") == 0
    assert capsys.readouterr().out.split() == ["2"]  # the key was already stored


def test_stdin_errors_name_the_line_and_field(
    ws: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    bad = '{"kind": "note", "text": "ok"}\n{"kind": "task_claimed", "task_id": "t", "agent": 7}\n'
    monkeypatch.setattr(sys, "stdin", io.StringIO(bad))
    assert run(ws, "append", "--stdin") == 1
    err = capsys.readouterr().err
    assert err.startswith("swarmlog: error: stdin line 2: task_claimed.agent must be a string")
    assert "got 7 (int)" in err and err.count("\n") == 1


def test_expected_seq_conflict_exits_3(ws: Path, capsys: pytest.CaptureFixture[str]):
    assert run(ws, "note", "one") == 0
    capsys.readouterr()
    assert run(ws, "append", "note", '{"text": "two"}', "--expect-seq", "0") == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "expected the log to end at seq 0 but it ends at seq 1" in captured.err
    assert run(ws, "append", "note", '{"text": "two"}', "--expect-seq", "1") == 0


@pytest.mark.parametrize(
    ("kind", "fields", "needle"),
    [
        ("no_such_kind", "{}", "unknown event kind 'no_such_kind'"),
        ("note", '{"text": "x", "seq": 9}', "'seq' is assigned by the log"),
        ("note", "[1, 2]", "must be a JSON object"),
        ("note", "{not json", "not JSON"),
    ],
)
def test_bad_events_are_refused(
    ws: Path, capsys: pytest.CaptureFixture[str], kind: str, fields: str, needle: str
):
    capsys.readouterr()
    assert run(ws, "append", kind, fields) == 1
    err = capsys.readouterr().err
    assert needle in err and err.startswith("swarmlog: error:")
    assert FileLog(ws / "memory" / "events").last_seq() == 0


@pytest.mark.parametrize(
    ("kind", "fields", "message"),
    [
        ("note", '{"text": 5}', "note.text must be a string, got 5 (int); fix the JSON and retry"),
        ("note", '{"text": null}', "note.text must be a string, got null; fix the JSON and retry"),
        (
            "note",
            '{"text": "x", "key": 5}',
            "note.key must be a string or null, got 5 (int); fix the JSON and retry",
        ),
        (
            "task_submitted",
            '{"task_id": "t", "title": "x", "deps": "t0"}',
            'task_submitted.deps must be an array, got "t0" (str); fix the JSON and retry',
        ),
        (
            "task_routed",
            '{"task_id": "t", "model": "m", "candidates": [{"model": 1}]}',
            "task_routed.candidates[0].model must be a string, got 1 (int); fix the JSON and retry",
        ),
        (
            "task_claimed",
            '{"task_id": "t", "agent": "a"}',
            "task_claimed is missing required field lease_until "
            "(required fields: task_id, agent, lease_until); fix the JSON and retry",
        ),
        (
            "task_submitted",
            '{"task": {"id": 1}}',
            "task_submitted is missing required field task_id (required fields: task_id, title); "
            'task_submitted has no field "task"; fix the JSON and retry',
        ),
        (
            "task_routed",
            '{"task_id": "t", "model": "m", "candidates": [{}]}',
            "task_routed.candidates[0] is missing required field model (required fields: model); "
            "fix the JSON and retry",
        ),
    ],
)
def test_invalid_fields_name_kind_field_type_and_value(
    ws: Path, capsys: pytest.CaptureFixture[str], kind: str, fields: str, message: str
):
    capsys.readouterr()
    assert run(ws, "append", kind, fields) == 1
    assert capsys.readouterr().err == f"swarmlog: error: {message}\n"
    assert FileLog(ws / "memory" / "events").last_seq() == 0


@pytest.mark.parametrize(
    ("kind", "fields", "message"),
    [
        (
            "note",
            '{"text": "x", "actr": "me"}',
            'note has no field "actr" (its fields: text, ts, run, actor, key)',
        ),
        (
            "task_routed",
            '{"task_id": "t", "model": "m", "candidates": [{"model": "a", "scor": 1}]}',
            'task_routed.candidates[0] has no field "scor" '
            "(its fields: model, eligible, reason, expected_s, score, in_flight, slots)",
        ),
    ],
)
def test_keys_that_are_not_fields_of_the_kind_are_refused(
    ws: Path, capsys: pytest.CaptureFixture[str], kind: str, fields: str, message: str
):
    capsys.readouterr()
    assert run(ws, "append", kind, fields) == 1
    assert capsys.readouterr().err == f"swarmlog: error: {message}; fix the JSON and retry\n"
    assert FileLog(ws / "memory" / "events").last_seq() == 0
    # kind itself is allowed, and free-form fields (config_loaded.config) take any key
    assert run(ws, "append", "note", '{"kind": "note", "text": "x", "run": "r", "key": "k"}') == 0
    assert run(ws, "append", "config_loaded", '{"config": {"any": {"thing": 1}}}') == 0


def test_the_log_still_reads_fields_it_does_not_know():
    """Only input typed on the command line is strict: a newer version's log still decodes."""
    from swarmlog.events import decode

    event = decode(b'{"kind":"note","text":"x","mood":"a field from a newer version"}')
    assert event.text == "x"  # type: ignore[union-attr]


def test_stdin_line_without_a_kind_says_so(
    ws: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"text": "c"}\n'))
    capsys.readouterr()
    assert run(ws, "append", "--stdin") == 1
    err = capsys.readouterr().err
    assert err.startswith('swarmlog: error: stdin line 1: no "kind" field;')
    assert err.endswith("; nothing was appended\n") and "None" not in err
    assert FileLog(ws / "memory" / "events").last_seq() == 0


def test_stdin_error_says_which_lines_were_appended(
    ws: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    lines = (
        '{"kind": "note", "text": "a"}\n\n{"kind": "note", "text": "b"}\n'
        '{"kind": "note", "text": 7}\n{"kind": "note", "text": "d"}\n'
    )
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    capsys.readouterr()
    assert run(ws, "append", "--stdin") == 1
    captured = capsys.readouterr()
    assert captured.out.split() == ["1", "2"]
    assert captured.err == (
        "swarmlog: error: stdin line 4: note.text must be a string, got 7 (int); "
        "fix the JSON and retry; lines 1-3 were appended (seqs printed above), "
        "nothing from line 4 on was; send only lines 4 onward again\n"
    )
    assert FileLog(ws / "memory" / "events").last_seq() == 2


def test_stdin_conflict_keeps_exit_3_and_says_what_was_appended(
    ws: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    assert run(ws, "note", "already there") == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"kind": "note", "text": "a"}\n'))
    capsys.readouterr()
    assert run(ws, "append", "--stdin", "--expect-seq", "0") == 3
    err = capsys.readouterr().err
    assert err.startswith("swarmlog: error: stdin line 1: expected the log to end at seq 0")
    assert err.endswith("; nothing was appended\n")


@pytest.mark.parametrize("text", ["", "  \n"])
def test_an_empty_note_is_refused(ws: Path, capsys: pytest.CaptureFixture[str], text: str):
    capsys.readouterr()
    assert run(ws, "note", text) == 2
    err = capsys.readouterr().err
    assert err.startswith("swarmlog: error: the note's text is empty") and err.count("\n") == 1
    assert "swarmlog note '" in err
    assert FileLog(ws / "memory" / "events").last_seq() == 0


def test_usage_errors_exit_2(ws: Path, capsys: pytest.CaptureFixture[str]):
    assert run(ws, "append") == 2
    assert run(ws, "log", "--kind", "nope") == 2
    assert main(["frobnicate"]) == 2
    capsys.readouterr()


def test_log_filters_and_json(ws: Path, capsys: pytest.CaptureFixture[str]):
    run(ws, "note", "first")
    run(ws, "append", "task_submitted", '{"task_id": "t1", "title": "lint the auth module"}')
    run(ws, "note", "third")
    capsys.readouterr()
    assert run(ws, "log") == 0
    text = capsys.readouterr().out.splitlines()
    assert len(text) == 3 and "task_submitted" in text[1] and "title=lint the auth" in text[1]
    assert run(ws, "log", "--after", "1", "--kind", "note", "--json") == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(r["seq"], r["kind"], r["text"]) for r in rows] == [(3, "note", "third")]


def test_log_alerts_prints_the_greppable_lines(ws: Path, capsys: pytest.CaptureFixture[str]):
    run(ws, "append", "escalation_raised", '{"escalation_id": "e1", "level": 3, "rule": "stuck"}')
    run(ws, "note", "not an alert")
    capsys.readouterr()
    assert run(ws, "log", "--alerts") == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("EMERGENCY level=3 rule=stuck")


def test_verify_reports_damage_with_file_and_line(ws: Path, capsys: pytest.CaptureFixture[str]):
    for text in ("a", "b", "c"):
        run(ws, "note", text)
    capsys.readouterr()
    assert run(ws, "verify") == 0
    assert capsys.readouterr().out.startswith("ok: 3 records in 1 segment(s), last seq 3")
    seg = segment(ws)
    data = bytearray(seg.read_bytes())
    second = data.index(b"\n") + 12
    data[second] ^= 0x04
    seg.write_bytes(bytes(data))
    assert run(ws, "verify", "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["problems"] == [f"{seg}:2: checksum mismatch"]
    assert run(ws, "log") == 1
    assert f"{seg}:2: checksum mismatch" in capsys.readouterr().err
    assert run(ws, "repair") == 1  # damage followed by a valid record: not a torn tail
    assert "not a torn tail" in capsys.readouterr().err
    assert seg.read_bytes() == bytes(data)


def test_repair_cuts_a_torn_tail_and_keeps_a_copy(ws: Path, capsys: pytest.CaptureFixture[str]):
    run(ws, "note", "kept")
    seg = segment(ws)
    with open(seg, "ab") as fh:
        fh.write(b'{"kind":"note","te')
    capsys.readouterr()
    assert run(ws, "verify") == 0
    assert "torn tail of 18 bytes" in capsys.readouterr().out
    assert run(ws, "repair") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"removed 18 bytes from {seg}; kept in {seg}.removed-1")
    assert Path(f"{seg}.removed-1").read_bytes() == b'{"kind":"note","te'
    assert run(ws, "repair") == 0
    assert "nothing to repair" in capsys.readouterr().out
    assert run(ws, "note", "next") == 0 and capsys.readouterr().out == "2\n"


def test_commands_on_a_missing_workspace_explain_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    assert main(["log", "--dir", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert "swarmlog init" in err and err.count("\n") == 1


def test_ctrl_c_ends_log_follow_quietly_with_130(ws: Path):
    """Ctrl-C is how one stops following: no watchfiles chatter, the exit code main gives it."""
    assert run(ws, "note", "backlog") == 0
    follow = subprocess.Popen(
        [sys.executable, "-m", "swarmlog", "log", "--follow", "--dir", str(ws)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follow.stdout is not None
        assert "backlog" in follow.stdout.readline()
        assert run(ws, "note", "live") == 0
        assert "live" in follow.stdout.readline()  # it is following: waiting in the file watch
        follow.send_signal(signal.SIGINT)
        out, err = follow.communicate(timeout=60)
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    assert follow.returncode == 130
    assert (out, err) == ("", "")


def test_python_m_swarmlog_help_runs():
    done = subprocess.run(
        [sys.executable, "-m", "swarmlog", "--help"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0
    assert "usage: swarmlog" in done.stdout
    for command in ("init", "append", "note", "log", "verify", "repair"):
        assert command in done.stdout
