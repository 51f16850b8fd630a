"""What `status` and `replay --explain` print stays plain text on a terminal (audit 4, render).

Names, ids, titles and errors come from agents and models and may hold anything. Printed raw, an
ANSI escape sequence (ESC [ ... m, or an OSC title ESC ] ... BEL) colours, retitles or rewrites
the operator's terminal, and a newline in a title splits one alert over several lines.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from swarmlog.events import (
    AgentRegistered,
    AgentStatusChanged,
    AlertRaised,
    CheckpointWritten,
    MessageSent,
    PhaseEntered,
    RunStarted,
    TaskFailed,
    TaskStarted,
    TaskSubmitted,
)
from swarmlog.log import FileLog
from tests.cli_helpers import run

ESC = "\x1b[31mRED\x1b[0m\x1b]0;pwned\x07\x9b2J\x00\u202e"
TASK = "T1" + ESC
RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _hostile(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    log = FileLog(ws / "memory" / "events", sync="none")
    run_id = "night" + ESC
    log.append(
        [
            RunStarted(ts=100.0, run=run_id, goal="g"),
            PhaseEntered(ts=101.0, run=run_id, phase="planning" + ESC),
            AgentRegistered(ts=101.0, run=run_id, agent="builder" + ESC, role="builder"),
            TaskSubmitted(ts=102.0, run=run_id, task_id=TASK, title="t\nsecond line" + ESC),
            TaskStarted(ts=103.0, run=run_id, task_id=TASK, agent="builder" + ESC),
            AgentStatusChanged(
                ts=103.0, run=run_id, agent="builder" + ESC, status="busy" + ESC, task_id=TASK
            ),
            TaskFailed(ts=104.0, run=run_id, task_id=TASK, agent="b", error="boom" + ESC),
            MessageSent(
                ts=105.0, run=run_id, msg_id="m1", sender="scout" + ESC, to="ALL", type="STATUS",
                content=f"about {TASK}\nand more",
            ),
            AlertRaised(
                ts=106.0, run=run_id, alert_id="A1" + ESC, level=3, rule="r",
                title="first\nsecond" + ESC,
            ),
        ]
    )  # fmt: skip
    log.close()
    return ws


def test_status_prints_no_control_characters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = _hostile(tmp_path)
    assert run(ws, "status") == 0
    out = capsys.readouterr().out
    assert not RAW.search(out), out.encode("unicode_escape")
    alert_lines = [line for line in out.splitlines() if line.startswith("alert ")]
    assert len(alert_lines) == 1 and "first second" in alert_lines[0]
    assert "[31mRED" in out  # the text stays readable, its escape byte replaced
    assert "builder\ufffd[31mRED" in out


def test_explain_prints_no_control_characters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = _hostile(tmp_path)
    assert run(ws, "replay", "--explain", TASK) == 0
    out = capsys.readouterr().out
    assert not RAW.search(out), out.encode("unicode_escape")
    lines = out.splitlines()
    assert len(lines) == 5  # submitted, started, status, failed, the message naming it
    assert "boom\ufffd[31mRED" in out and "scout\ufffd[31mRED" in out


def test_verify_findings_print_no_control_characters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = tmp_path / "ws"
    log = FileLog(ws / "memory" / "events", sync="none")
    log.append(
        [
            RunStarted(ts=100.0, run="r", goal="g"),
            CheckpointWritten(
                ts=101.0, run="r", checkpoint_id="C1" + ESC, trigger="t", summary="s",
                state_digest="0" * 64,
            ),
        ]
    )  # fmt: skip
    log.close()
    assert run(ws, "replay", "--verify") == 1
    out = capsys.readouterr().out
    assert "checkpoint C1\ufffd[31mRED" in out and not RAW.search(out), out


def test_status_cuts_long_text_and_quotes_the_ack_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = tmp_path / "ws"
    log = FileLog(ws / "memory" / "events", sync="none")
    log.append(
        [
            RunStarted(ts=100.0, run="r", goal="g"),
            AlertRaised(ts=101.0, run="r", alert_id="two words", level=3, rule="r",
                        title="x" * 1_000_000),
        ]
    )  # fmt: skip
    log.close()
    assert run(ws, "status") == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("alert ")]
    assert len(line) < 400 and "…" in line
    assert line.endswith("(swarmlog ack 'two words')")
    assert run(ws, "ack", *shlex.split(line[line.index("(") + 1 : -1])[2:]) == 0
