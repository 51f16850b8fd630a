"""Emoji and right-to-left text survive rendering; escapes and hidden text do not (audit 4).

The filters replaced every format character (Unicode Cf) and every code point this Python's
Unicode tables call unassigned with U+FFFD: the zero-width joiner inside an emoji family, the
non-joiner inside a Persian word, the right-to-left mark in Hebrew, and any emoji newer than the
interpreter's Unicode (U+1FAE8, Unicode 15) came out as replacement characters in every view.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmlog.events import (
    AgentRegistered,
    AgentStatusChanged,
    DecisionMade,
    Note,
    RunStarted,
    TaskStarted,
    TaskSubmitted,
)
from swarmlog.log import FileLog
from tests.cli_helpers import run

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
PERSIAN = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # mi-khaham, with its ZWNJ
HEBREW = "\u200f\u05e9\u05dc\u05d5\u05dd\u200e"  # shalom between RLM and LRM
SHAKING = "\U0001fae8"  # Unicode 15
TEXT = f"{FAMILY} {PERSIAN} {HEBREW} {SHAKING}"
HOSTILE = "\x1b[31m\u202eevil\u200b\U000e0041\x00"


def _night(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    log = FileLog(ws / "memory" / "events", sync="none")
    log.append(
        [
            RunStarted(ts=1000.0, run="r", goal=TEXT + HOSTILE),
            AgentRegistered(ts=1001.0, run="r", agent="builder", role="builder"),
            TaskSubmitted(ts=1002.0, run="r", task_id="T1", title=TEXT + HOSTILE),
            TaskStarted(ts=1003.0, run="r", task_id="T1", agent="builder"),
            AgentStatusChanged(
                ts=1003.0, run="r", agent="builder", status="busy", task_id="T1"
            ),
            DecisionMade(
                ts=1004.0, run="r", decision_id="D1", subject=TEXT, outcome="o", rule="r",
                rationale=f"{TEXT}\n{HOSTILE}",
            ),
            Note(ts=1005.0, run="r", text=TEXT + HOSTILE),
        ]
    )  # fmt: skip
    log.close()
    return ws


@pytest.mark.parametrize("name", ["team-state.md", "report.md", "decisions.md"])
def test_emoji_and_rtl_text_render_intact(tmp_path: Path, name: str) -> None:
    ws = _night(tmp_path)
    assert run(ws, "render") == 0
    text = (ws / "memory" / name).read_text()
    assert TEXT in text
    # What could colour a terminal, reorder a line or hide text is still gone.
    for bad in ("\x1b", "\u202e", "\u200b", "\U000e0041", "\x00"):
        assert bad not in text


def test_explain_keeps_emoji_and_rtl_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = _night(tmp_path)
    assert run(ws, "replay", "--explain", "T1") == 0
    out = capsys.readouterr().out
    assert TEXT in out and "\x1b" not in out and "\u202e" not in out
