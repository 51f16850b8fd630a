"""The alert file's 'swarmlog ack ID' line is a command a person can paste (audit 4, render).

It was written as `swarmlog ack {{ id|inline }}`: inside a code span Markdown reads neither
backslash escapes nor entities, so an id with a pipe, an ampersand or an angle bracket was shown
as 'A\\|1&amp;&lt;b&gt;' (ack answers: no such alert), an escaped backtick ended the span early, and
an id with a space became two arguments.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from swarmlog.events import AlertRaised, RunStarted
from swarmlog.log import FileLog
from tests.cli_helpers import run

SPAN = re.compile(r"^- (`+)(.*?)\1: acknowledge this alert$", re.MULTILINE)


def _code_span(line_match: re.Match[str]) -> str:
    """A CommonMark code span's content: one leading and trailing space stripped if both."""
    fence, text = line_match.group(1), line_match.group(2)
    # A run of backticks as long as the fence inside would have ended the span there.
    assert fence not in re.findall(r"`+", text), text
    if len(text) > 2 and text.startswith(" ") and text.endswith(" "):
        text = text[1:-1]
    return text


@pytest.mark.parametrize("alert_id", ["A-7", "A|1&<b>", "a`b", "`x", "two words", "it's"])
def test_the_ack_line_pastes_as_the_right_command(
    tmp_path: Path, alert_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = tmp_path / "ws"
    log = FileLog(ws / "memory" / "events", sync="none")
    log.append(
        [
            RunStarted(ts=1000.0, run="r", goal="g"),
            AlertRaised(ts=1001.0, run="r", alert_id=alert_id, level=3, rule="r", title="t"),
        ]
    )
    log.close()
    assert run(ws, "render") == 0
    (alert_file,) = (ws / "alerts").glob("ALERT-*.md")
    m = SPAN.search(alert_file.read_text())
    assert m, alert_file.read_text()
    words = shlex.split(_code_span(m))
    assert words == ["swarmlog", "ack", alert_id]
    capsys.readouterr()
    assert run(ws, *words[1:]) == 0, capsys.readouterr().err


@pytest.mark.parametrize(
    ("advice", "generic"),
    [
        ("Acknowledge: swarmlog ack A1", False),
        ("Acknowledge: swarmlog ack A10", True),
        ("swarmlog ack all", True),
        ("`swarmlog ack X`", True),
    ],
)
def test_advice_naming_another_alert_keeps_the_ack_line(
    tmp_path: Path, advice: str, generic: bool
) -> None:
    ws = tmp_path / "ws"
    log = FileLog(ws / "memory" / "events", sync="none")
    log.append(
        [
            RunStarted(ts=1000.0, run="r", goal="g"),
            AlertRaised(
                ts=1001.0, run="r", alert_id="A1", level=3, rule="r", title="t", advice=(advice,)
            ),
        ]
    )
    log.close()
    assert run(ws, "render") == 0
    (alert_file,) = (ws / "alerts").glob("ALERT-*.md")
    assert bool(SPAN.search(alert_file.read_text())) is generic
