"""Audit findings on the input side: bad bytes, bad times and bad paths give one-line errors.

Each test runs the real ``swarmlog`` (``main([...])`` or a subprocess) on a workspace in tmp_path
and checks the exit code, the one stderr line and that nothing was appended.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import last_seq, one_error_line, run

from swarmlog.cli import main
from swarmlog.events import Note
from swarmlog.log import FileLog


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    assert main(["init", "--dir", str(tmp_path / "ws"), "--no-detect"]) == 0
    return tmp_path / "ws"


def swarmlog(*args: str | bytes, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "swarmlog", *args], input=stdin, capture_output=True, timeout=60
    )


def bytes_stdin(data: bytes) -> io.TextIOWrapper:
    """What a terminal or a pipe gives Python: text over bytes, undecodable bytes escaped."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="surrogateescape")


# Non-UTF-8 input (#7)


def test_stdin_line_with_a_non_utf8_byte_names_line_and_byte(
    ws: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    data = b'{"kind":"note","text":"ok"}\n{"kind":"note","text":"\xff"}\n'
    monkeypatch.setattr(sys, "stdin", bytes_stdin(data))
    capsys.readouterr()
    assert run(ws, "append", "--stdin") == 1
    captured = capsys.readouterr()
    err = one_error_line(captured.err)
    assert "stdin line 2: not valid UTF-8: byte 0xff at offset 23" in err
    assert "lines 1-1 were appended" in err  # the good first line went in, the bad one did not
    assert captured.out.split() == ["1"]
    assert last_seq(ws) == 1


def test_stdin_non_utf8_through_a_real_pipe(ws: Path):
    proc = swarmlog("append", "--stdin", "--dir", str(ws), stdin=b'{"kind":"note","text":"\xff"}\n')
    assert proc.returncode == 1
    err = one_error_line(proc.stderr.decode())
    assert "stdin line 1: not valid UTF-8: byte 0xff at offset 23" in err
    assert "nothing was appended" in err
    assert last_seq(ws) == 0


def test_note_with_a_non_utf8_argument_is_a_usage_error(ws: Path):
    proc = swarmlog("note", b"a\xffb", "--dir", str(ws))
    assert proc.returncode == 2
    err = one_error_line(proc.stderr.decode())
    assert "the note's text is not valid UTF-8: byte 0xff at offset 1" in err
    assert last_seq(ws) == 0


def test_append_json_argument_with_a_non_utf8_byte_is_a_usage_error(ws: Path):
    proc = swarmlog("append", "note", b'{"text":"\xfe"}', "--dir", str(ws))
    assert proc.returncode == 2
    err = one_error_line(proc.stderr.decode())
    assert "JSON argument is not valid UTF-8: byte 0xfe at offset 9" in err
    assert last_seq(ws) == 0


def test_append_kind_argument_with_a_non_utf8_byte_is_a_usage_error(ws: Path):
    proc = swarmlog("append", b"no\xc3te", '{"text":"x"}', "--dir", str(ws))
    assert proc.returncode == 2
    err = one_error_line(proc.stderr.decode())
    assert "KIND argument is not valid UTF-8: byte 0xc3 at offset 2" in err
    assert last_seq(ws) == 0


@pytest.mark.parametrize(
    "escape",
    ["\\ud800", "\\ud800x", "\\udcff", "\\ud800\\u0041"],
)
def test_a_lone_surrogate_escape_is_named_as_such(
    ws: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, escape: str
):
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"kind":"note","text":"' + escape + '"}\n'))
    capsys.readouterr()
    assert run(ws, "append", "--stdin") == 1
    err = one_error_line(capsys.readouterr().err)
    assert "truncated" not in err
    assert "lone UTF-16 surrogate escape" in err and "at character 23" in err
    assert last_seq(ws) == 0


def test_a_paired_surrogate_escape_is_fine(
    ws: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"kind":"note","text":"\\ud83d\\ude00"}\n'))
    assert run(ws, "append", "--stdin") == 0
    events = list(FileLog(ws / "memory" / "events").read())
    assert isinstance(events[0], Note) and events[0].text == "\U0001f600"


# Paths that cannot be used (#7)


def test_init_dir_pointing_at_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    target = tmp_path / "somefile"
    target.write_text("mine\n")
    assert main(["init", "--no-detect", "--dir", str(target)]) == 2
    err = one_error_line(capsys.readouterr().err)
    assert f"--dir {target} is a file, not a folder" in err
    assert main(["init", "--no-detect", "--dir", str(target / "sub")]) == 1
    err = one_error_line(capsys.readouterr().err)
    assert f"cannot create the workspace {target / 'sub'}" in err and "Not a directory" in err
    assert target.read_text() == "mine\n"


def test_replay_out_unusable(ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert run(ws, "note", "one") == 0
    afile = tmp_path / "afile"
    afile.write_text("keep\n")
    capsys.readouterr()
    assert run(ws, "replay", "--until", "1", "--out", str(afile)) == 2
    err = one_error_line(capsys.readouterr().err)
    assert f"--out {afile} is a file, not a folder" in err
    assert run(ws, "replay", "--until", "1", "--out", str(afile / "sub")) == 1
    err = one_error_line(capsys.readouterr().err)
    assert f"cannot write into --out {afile / 'sub'}" in err
    assert afile.read_text() == "keep\n"


# Times given by the user (#4)

DAY = 86_400.0


@pytest.mark.parametrize("ts", ["1e308", "-1", "-0.5", "1e12", str(time.time() + 2 * DAY), "4e9"])
def test_an_unusable_ts_is_refused(ws: Path, capsys: pytest.CaptureFixture[str], ts: str):
    capsys.readouterr()
    assert run(ws, "append", "note", f'{{"text": "x", "ts": {ts}}}') == 1
    err = one_error_line(capsys.readouterr().err)
    assert "note.ts = " in err and "seconds since 1970-01-01 UTC" in err
    assert "up to one day ahead of now" in err and "leave ts out" in err
    assert last_seq(ws) == 0


def test_an_infinite_ts_is_refused_as_json(ws: Path, capsys: pytest.CaptureFixture[str]):
    capsys.readouterr()
    assert run(ws, "append", "note", '{"text": "x", "ts": 1e999}') == 1
    assert "Number out of range" in one_error_line(capsys.readouterr().err)
    assert last_seq(ws) == 0


def test_an_unusable_ts_on_stdin_is_refused(
    ws: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"kind":"note","text":"x","ts":1e12}\n'))
    capsys.readouterr()
    assert run(ws, "append", "--stdin") == 1
    err = one_error_line(capsys.readouterr().err)
    assert err.startswith("swarmlog: error: stdin line 1: note.ts = 1000000000000")
    assert last_seq(ws) == 0


def test_a_usable_ts_is_kept(ws: Path, capsys: pytest.CaptureFixture[str]):
    past = 1_700_000_000.0
    soon = time.time() + 3600
    assert run(ws, "append", "note", f'{{"text": "then", "ts": {past}}}') == 0
    assert run(ws, "append", "note", f'{{"text": "soon", "ts": {soon}}}') == 0
    assert run(ws, "append", "note", '{"text": "now", "ts": 0}') == 0  # 0: the log stamps it
    events = list(FileLog(ws / "memory" / "events").read())
    assert [e.ts for e in events[:2]] == [past, soon]
    assert abs(events[2].ts - time.time()) < 60


def test_log_prints_an_odd_ts_already_in_the_log(ws: Path, capsys: pytest.CaptureFixture[str]):
    """A log written before the check (or by a library caller) must still print."""
    log = FileLog(ws / "memory" / "events")
    log.append([Note(text="huge", ts=1e308), Note(text="far", ts=1e12), Note(text="fine", ts=1)])
    log.close()
    capsys.readouterr()
    assert run(ws, "log") == 0
    out = capsys.readouterr().out.splitlines()
    assert "1e+308" in out[0] and "text=huge" in out[0]
    assert "1000000000000.0" in out[1] and "text=far" in out[1]
    assert "1970-01-01T00:00:01Z" in out[2]
    assert run(ws, "log", "--json") == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == ["huge", "far", "fine"]


def test_error_message_states_the_upper_bound_as_a_date(
    ws: Path, capsys: pytest.CaptureFixture[str]
):
    capsys.readouterr()
    assert run(ws, "append", "note", '{"text": "x", "ts": 4e9}') == 1
    err = capsys.readouterr().err
    tomorrow = dt.datetime.fromtimestamp(time.time() + DAY, tz=dt.UTC).strftime("%Y-%m-%d")
    assert tomorrow in err
