"""`replay --until` and `replay --explain` with odd values (audit 4, render).

'--until ²' passed str.isdigit and died in int() with a traceback; an empty '--until' (a
script's unset variable) was read as no limit and an empty '--explain' rendered the whole log
into a temporary folder, each a silent answer to another question.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmlog.events import (
    AlertRaised,
    MessageSent,
    RunEnded,
    RunStarted,
    TaskCompleted,
    TaskStarted,
    TaskSubmitted,
)
from swarmlog.log import FileLog
from tests.cli_helpers import run

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def _night(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    log = FileLog(ws / "memory" / "events", sync="none")
    log.append(
        [
            RunStarted(ts=T0, run="r", goal="g"),
            TaskSubmitted(ts=T0 + 60, run="r", task_id="../T1", title="t"),
            TaskStarted(ts=T0 + 120, run="r", task_id="../T1", agent="builder"),
            TaskCompleted(ts=T0 + 180, run="r", task_id="../T1", agent="builder"),
            RunEnded(ts=T0 + 240, run="r", outcome="completed"),
        ]
    )
    log.close()
    return ws


@pytest.mark.parametrize("until", ["²", "", "  ", "2027-13-01", "3:45", "1e3", "-1"])
def test_until_that_is_no_seq_nor_time_is_a_usage_error(
    tmp_path: Path, until: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = _night(tmp_path)
    assert run(ws, "replay", "--until", until, "--out", str(tmp_path / "out")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "neither a seq nor a time" in err[0]


def test_empty_explain_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = _night(tmp_path)
    assert run(ws, "replay", "--explain", "") == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "--explain needs a task id" in captured.err


@pytest.mark.parametrize(
    ("until", "seq"),
    [
        ("2026-01-01T00:00:00Z", 0),  # before the night
        ("0001-01-01T00:00:00+01:00", 0),
        ("2027-01-15T08:02:30Z", 3),  # inside it
        ("2027-01-15T09:02:30+01:00", 3),  # the same moment, another offset
        ("2027-01-15T08:02:30", 3),  # no offset: UTC
        ("9999-12-31T23:59:59-23:59", 5),  # after it
        ("99999999999999999999", 5),
        ("0", 0),
    ],
)
def test_until_before_inside_and_after_the_night(
    tmp_path: Path, until: str, seq: int, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = _night(tmp_path)
    out = tmp_path / "out"
    assert run(ws, "replay", "--until", until, "--out", str(out)) == 0
    assert f"state at seq {seq} rendered into" in capsys.readouterr().out
    assert f"at seq {seq}" in (out / "memory" / "team-state.md").read_text()


def test_explain_odd_and_unknown_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = _night(tmp_path)
    assert run(ws, "replay", "--explain", "../T1") == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert run(ws, "replay", "--explain", "../T1", "--until", "2027-01-15T08:01:00Z") == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    for task in ("nope", "../../etc/passwd", "T1\x1b[2J"):
        assert run(ws, "replay", "--explain", task) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "\x1b" not in err


def test_explain_matches_a_message_only_where_it_names_the_task(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A message mentioning 'T10' or 'task-T1' is not T1's story, and a one-letter id that no
    task has is unknown (it matched every message holding that letter)."""
    ws = tmp_path / "ws"
    log = FileLog(ws / "memory" / "events", sync="none")
    log.append(
        [
            RunStarted(ts=T0, run="r", goal="g"),
            TaskSubmitted(ts=T0 + 1, run="r", task_id="T1", title="t"),
            TaskSubmitted(ts=T0 + 2, run="r", task_id="T10", title="t"),
            MessageSent(ts=T0 + 3, run="r", msg_id="m1", sender="scout", to="ALL",
                        type="STATUS", content="T10 needs a review; see task-T1x"),
            MessageSent(ts=T0 + 4, run="r", msg_id="m2", sender="scout", to="ALL",
                        type="STATUS", content="T1, then the rest"),
            MessageSent(ts=T0 + 5, run="r", msg_id="m3", sender="scout", to="ALL",
                        type="STATUS", content="blocked on ../T1."),
        ]
    )  # fmt: skip
    log.close()
    assert run(ws, "replay", "--explain", "T1") == 0
    seqs = [int(line.split()[0]) for line in capsys.readouterr().out.splitlines()]
    assert seqs == [2, 5, 6]
    assert run(ws, "replay", "--explain", "e") == 1
    assert "no event mentions task 'e'" in capsys.readouterr().err


def test_out_that_is_the_workspace_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """'--out .' in the workspace rewound its memory/*.md and removed its alert files."""
    ws = tmp_path / "ws"
    log = FileLog(ws / "memory" / "events", sync="none")
    log.append(
        [
            RunStarted(ts=T0, run="r", goal="g"),
            AlertRaised(ts=T0 + 5, run="r", alert_id="A1", level=3, rule="r", title="t"),
        ]
    )
    log.close()
    assert run(ws, "render") == 0
    before = {p: p.read_bytes() for p in ws.rglob("*.md")}
    assert any(p.parent.name == "alerts" for p in before)
    (tmp_path / "link").symlink_to(ws)
    for out in (str(ws), f"{ws}/.", str(tmp_path / "link")):
        capsys.readouterr()
        assert run(ws, "replay", "--until", "1", "--out", out) == 2
        assert "is the workspace" in capsys.readouterr().err
        assert {p: p.read_bytes() for p in ws.rglob("*.md")} == before
