"""The report's Mermaid gantt chart parses whatever the tasks are called (audit 4, render).

Mermaid lexes each gantt line with the first rule of gantt.jison that matches at its start
(case-insensitive); keyword rules come before a task's text. A task whose label (``id title``)
starts with ``title``, ``excludes``, ``click``, ``call`` or a date was read as the chart's title,
its excluded days, an interaction or a date, and the whole chart failed to render.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from swarmlog.events import Event, RunStarted, TaskCompleted, TaskStarted, TaskSubmitted
from swarmlog.log import FileLog
from swarmlog.render import md_mermaid
from tests.cli_helpers import run

# gantt.jison's rules in their order, those a line can start with (whitespace skipped first).
RULES = [
    ("comment", r"%%[^\n]*|#[^\n]*"),
    ("href", r'href\s+"'),
    ("call", r"call\s+"),
    ("click", r"click\s+"),
    ("gantt", r"gantt"),
    ("dateFormat", r"dateFormat\s[^#\n;]+"),
    ("inclusiveEndDates", r"inclusiveEndDates"),
    ("topAxis", r"topAxis"),
    ("axisFormat", r"axisFormat\s[^#\n;]+"),
    ("tickInterval", r"tickInterval\s[^#\n;]+"),
    ("includes", r"includes\s[^#\n;]+"),
    ("excludes", r"excludes\s[^#\n;]+"),
    ("todayMarker", r"todayMarker\s[^\n;]+"),
    ("weekday", r"weekday\s[^#\n;]+"),
    ("weekend", r"weekend\s+(?:friday|saturday)"),
    ("date", r"\d\d\d\d-\d\d-\d\d"),
    ("title", r"title\s[^#\n;]+"),
    ("accDescription", r"accDescription\s[^#\n;]+"),
    ("section", r"section\s[^#:\n;]+"),
    ("taskTxt", r"[^#:\n;]+"),
]
TASK_DATA = re.compile(r":(?:done|crit), \d+, \d+")

LABELS = [
    "title",
    "Excludes",
    "includes",
    "click",
    "call",
    "href",
    "gantt",
    "2026-01-28",
    "section",
    "dateFormat",
    "todayMarker",
    "weekday",
    "TopAxis",
]


def _first_rule(line: str) -> tuple[str, str]:
    for name, pattern in RULES:
        m = re.match(pattern, line, re.IGNORECASE)
        if m:
            return name, line[m.end() :]
    return "INVALID", line


def _gantt_tasks(report: str) -> list[str]:
    block = report.split("```mermaid\n", 1)[1].split("\n```", 1)[0]
    lines = [x.strip() for x in block.splitlines()]
    return [x for x in lines[4:] if not x.startswith("section ")]


def test_every_gantt_task_line_lexes_as_a_task(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    log = FileLog(ws / "memory" / "events", sync="none")
    events: list[Event] = [RunStarted(ts=1000.0, run="r", goal="g")]
    for i, label in enumerate(LABELS):
        start = 1001.0 + i
        events += [
            TaskSubmitted(ts=start, run="r", task_id=label, title="weekends; x: #y"),
            TaskStarted(ts=start, run="r", task_id=label, agent="builder"),
            TaskCompleted(ts=start + 5, run="r", task_id=label, agent="builder"),
        ]
    log.append(events)
    log.close()
    assert run(ws, "render") == 0
    tasks = _gantt_tasks((ws / "memory" / "report.md").read_text())
    assert len(tasks) == len(LABELS)
    for line in tasks:
        rule, rest = _first_rule(line)
        assert rule == "taskTxt", line
        assert TASK_DATA.fullmatch(rest), line


@pytest.mark.parametrize("label", ["T1 title", "titles", "sectioned", "a title b", "Builder"])
def test_ordinary_labels_are_unchanged(label: str) -> None:
    assert md_mermaid(label) == label
