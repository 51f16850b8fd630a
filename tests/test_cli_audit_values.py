"""Audit #12: bad option values are refused with one line instead of being accepted silently.

Usage errors exit 2 (DESIGN §9). Each test runs the real ``swarmlog`` on a workspace in tmp_path.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from cli_helpers import last_seq, one_error_line, run
from test_render_scenario import scripted

from swarmlog.cli import main
from swarmlog.events import CheckpointWritten
from swarmlog.log import FileLog


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    assert main(["init", "--dir", str(tmp_path / "ws"), "--no-detect"]) == 0
    return tmp_path / "ws"


@pytest.fixture
def night(tmp_path: Path) -> Path:
    """A workspace whose log holds the scripted night (50 events), rendered and snapshotted."""
    root = tmp_path / "night"
    assert main(["init", "--dir", str(root), "--no-detect"]) == 0
    log = FileLog(root / "memory" / "events", sync="none")
    log.append([msgspec.structs.replace(e, seq=0) for e in scripted()])
    log.close()
    assert main(["render", "--dir", str(root)]) == 0
    return root


def test_log_after_negative_is_a_usage_error(ws: Path, capsys: pytest.CaptureFixture[str]):
    assert run(ws, "note", "one") == 0
    capsys.readouterr()
    assert run(ws, "log", "--after", "-5") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "--after must be a seq, 0 or more, got -5" in one_error_line(captured.err)


def test_append_expect_seq_negative_is_a_usage_error_not_a_conflict(
    ws: Path, capsys: pytest.CaptureFixture[str]
):
    capsys.readouterr()
    assert run(ws, "append", "note", '{"text": "x"}', "--expect-seq", "-5") == 2
    assert "--expect-seq must be 0 or more" in one_error_line(capsys.readouterr().err)
    assert last_seq(ws) == 0


@pytest.mark.parametrize("url", ["notaurl", "ftp://host/v1", "http://", "http://host:port/v1"])
def test_init_openai_not_a_url(tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str):
    capsys.readouterr()
    assert main(["init", "--dir", str(tmp_path / "w"), "--openai", url]) == 2
    err = one_error_line(capsys.readouterr().err)
    assert f"--openai {url!r} is not a URL" in err and "http://127.0.0.1:8000/v1" in err
    assert not (tmp_path / "w").exists()  # refused before anything was created


def test_init_ollama_not_a_url_and_bad_timeout(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    capsys.readouterr()
    assert main(["init", "--dir", str(tmp_path / "w"), "--ollama", "localhost"]) == 2
    assert "--ollama 'localhost' is not a URL" in one_error_line(capsys.readouterr().err)
    assert main(["init", "--dir", str(tmp_path / "w"), "--timeout", "0"]) == 2
    assert "argument --timeout: '0' is not a positive number of seconds" in capsys.readouterr().err
    for argv in (["doctor", "--timeout", "-1"], ["watch", "--interval", "nan"]):
        assert main([*argv, "--dir", str(tmp_path / "w")]) == 2
        assert "is not a positive number of seconds" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_replay_verify_honours_until(night: Path, capsys: pytest.CaptureFixture[str]):
    log = FileLog(night / "memory" / "events")
    log.append(
        [CheckpointWritten(checkpoint_id="C9", trigger="t", summary="s", state_digest="0" * 64)]
    )
    log.close()
    capsys.readouterr()
    assert run(night, "replay", "--verify") == 1  # the bad checkpoint at seq 51
    assert "seq 51: checkpoint C9" in capsys.readouterr().out
    assert run(night, "replay", "--verify", "--until", "20") == 0
    out = capsys.readouterr().out
    assert "ok: folded 20 events (up to --until 20, of 51)" in out
    assert "snapshot" not in out  # the snapshot at seq 50 lies past --until: not compared
    assert run(night, "replay", "--verify", "--until", "20", "--json") == 0
    row = json.loads(capsys.readouterr().out)
    assert row == {"ok": True, "mismatches": 0, "folded": 20, "last_seq": 51}
    # a time: the scripted events are 30 s apart after the first eight
    assert run(night, "replay", "--verify", "--until", "2026-01-28T03:35:00Z") == 0
    assert "ok: folded 17 events (up to --until 2026-01-28T03:35:00Z, of 51)" in (
        capsys.readouterr().out
    )


def test_replay_options_that_do_not_combine(night: Path, capsys: pytest.CaptureFixture[str]):
    capsys.readouterr()
    assert run(night, "replay", "--verify", "--out", str(night / "x")) == 2
    assert "--out renders the state at --until; --verify" in one_error_line(capsys.readouterr().err)
    assert run(night, "replay", "--explain", "T1", "--from-snapshot") == 2
    assert "--from-snapshot" in one_error_line(capsys.readouterr().err)
    assert not (night / "x").exists()


def test_replay_explain_honours_until(night: Path, capsys: pytest.CaptureFixture[str]):
    capsys.readouterr()
    assert run(night, "replay", "--explain", "T1") == 0
    whole = capsys.readouterr().out.splitlines()
    assert run(night, "replay", "--explain", "T1", "--until", "12") == 0
    part = capsys.readouterr().out.splitlines()
    assert part == [x for x in whole if int(x.split()[0]) <= 12] and len(part) < len(whole)
    assert run(night, "replay", "--explain", "T1", "--until", "3") == 1
    assert "no event up to --until 3 mentions task 'T1'" in one_error_line(capsys.readouterr().err)
