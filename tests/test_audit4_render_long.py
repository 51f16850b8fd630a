"""A 1 MB field costs a render what it shows, not its whole length (audit 4, render).

The filters cleaned every character of a value (one Unicode category look-up each) before
cutting it to what a cell, a line or a fenced block shows: a 1 MB rationale or error cost about
half a second on every render, and the renderer renders after every batch of events.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import pytest

from swarmlog import text as text_module
from swarmlog.events import DecisionMade, RunStarted
from swarmlog.log import FileLog
from swarmlog.render import md_block, md_cell, md_inline, plain_line
from tests.cli_helpers import run

BIG = "é|\x1b\n" * 250_000  # 1 MB, not printable: every character is looked up


class _Counting:
    def __init__(self) -> None:
        self.calls = 0

    def category(self, ch: str) -> str:
        self.calls += 1
        return unicodedata.category(ch)

    def __getattr__(self, name: str) -> Any:
        return getattr(unicodedata, name)


@pytest.mark.parametrize(
    ("show", "limit"),
    [(md_block, 20_000), (md_inline, 500), (md_cell, 120), (lambda v: plain_line(v, 300), 300)],
)
def test_a_long_value_is_cleaned_only_as_far_as_it_is_shown(
    monkeypatch: pytest.MonkeyPatch, show: Any, limit: int
) -> None:
    counting = _Counting()
    monkeypatch.setattr(text_module, "unicodedata", counting)
    text = show(BIG)
    assert 0 < counting.calls <= 3 * limit + 2048  # 0: the counter no longer sees the cleaning
    assert "…" in text and "\x1b" not in text
    assert "é" in text


def test_short_values_are_shown_whole() -> None:
    assert md_cell("a" * 120) == "a" * 120
    assert md_cell("a" * 121) == "a" * 119 + "…"
    assert md_block("\n\n  x\ny\n") == "```text\n  x\ny\n```"
    assert md_inline(" " * 10_000 + "hi") == "hi"


def test_crlf_and_cr_line_ends_are_line_ends_in_a_block(tmp_path: Path) -> None:
    """A CRLF text (a model reply, a Windows editor) showed U+FFFD at the end of every line."""
    assert md_block("\r\n\r\n  x\r\ny\rz\r\n") == "```text\n  x\ny\nz\n```"
    assert md_cell("a\r\nb\rc") == "a b c" and md_inline("a\r\nb") == "a b"
    assert plain_line("a\r\nb\r") == "a b"
    ws = tmp_path / "ws"
    log = FileLog(ws / "memory" / "events", sync="none")
    log.append(
        [
            RunStarted(ts=1000.0, run="r", goal="g"),
            DecisionMade(
                ts=1001.0, run="r", decision_id="D1", subject="s", outcome="o", rule="r",
                rationale="first line\r\nsecond line\r\n",
            ),
        ]
    )  # fmt: skip
    log.close()
    assert run(ws, "render") == 0
    decisions = (ws / "memory" / "decisions.md").read_text()
    assert "```text\nfirst line\nsecond line\n```" in decisions
    assert "\ufffd" not in decisions
