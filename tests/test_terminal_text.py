"""Text a model wrote reaches the terminal through `log`, `log --alerts`, `alerts` and `watch`:
an ANSI escape there could colour, retitle or rewrite the operator's terminal, a NUL or a newline
split a greppable EMERGENCY line in two. Each view prints such text as one plain line."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmlog.events import AlertRaised, EscalationRaised, Note, RunStarted
from swarmlog.log import FileLog
from tests.cli_helpers import run

HOSTILE = "\x1b[31mred\x1b]0;title\x07\x00 and\nnext line"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    assert run(tmp_path, "init", "--no-detect") == 0
    with FileLog(tmp_path / "memory" / "events") as log:
        log.append(
            [
                RunStarted(goal=HOSTILE, run="r1", actor="supervisor"),
                Note(text=HOSTILE, actor="\x1b[2Jwiper"),
                EscalationRaised(escalation_id="E1", level=3, rule="x", reason=HOSTILE, run="r1"),
                AlertRaised(alert_id="A1", level=3, rule="x\x1b[1m", title=HOSTILE, run="r1"),
            ]
        )
    return tmp_path


@pytest.mark.parametrize(
    "command",
    [("log",), ("log", "--alerts"), ("alerts",), ("watch", "--once")],
    ids=lambda c: " ".join(c),
)
def test_views_print_model_text_without_escapes_or_broken_lines(
    ws: Path, command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(ws, *command) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x00" not in out and "\x07" not in out, repr(out)
    assert "next line" in out or command == ("watch", "--once")
    for line in out.splitlines():
        assert not line.startswith("next line"), f"a newline from the log split a line: {out!r}"
