"""Audit #8: ``--json`` is honoured by report, replay --explain, watch --once and log --alerts.

DESIGN §9: with --json a command prints one JSON object per line. Each test runs the real command
on a workspace in tmp_path and parses every line of its output.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from swarmlog.cli import main
from swarmlog.events import (
    AgentRegistered,
    EscalationRaised,
    EventBase,
    PhaseEntered,
    RunEnded,
    RunStarted,
    TaskCompleted,
    TaskRouted,
    TaskSubmitted,
)
from swarmlog.log import FileLog

T0 = 1_790_000_000.0


def _night() -> list[EventBase]:
    return [
        RunStarted(goal="Add authentication", run="r1", ts=T0),
        PhaseEntered(phase="execution", expected_s=600, run="r1", ts=T0 + 10),
        AgentRegistered(agent="builder", role="builder", run="r1", ts=T0 + 11),
        TaskSubmitted(
            task_id="t1", title="lint the auth module", task_kind="lint", run="r1", ts=T0 + 12
        ),
        TaskRouted(task_id="t1", model="fast", reason="cheapest", run="r1", ts=T0 + 13),
        EscalationRaised(
            escalation_id="esc-1",
            level=3,
            rule="queue_depth",
            reason="queue 60 > 50",
            run="r1",
            ts=T0 + 30,
        ),
        TaskCompleted(task_id="t1", agent="builder", run="r1", ts=T0 + 40),
        RunEnded(outcome="aborted", reason="operator", run="r1", ts=T0 + 50),
    ]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    assert main(["init", "--dir", str(tmp_path), "--no-detect"]) == 0
    log = FileLog(tmp_path / "memory" / "events")
    log.append(_night())
    log.close()
    return tmp_path


def json_lines(out: str) -> list[dict[str, Any]]:
    lines = out.splitlines()
    assert lines, "no output"
    rows = [json.loads(x) for x in lines]  # every line is one object, nothing else
    assert all(isinstance(r, dict) for r in rows)
    return rows


def test_report_json_is_one_object_with_figures_and_markdown(
    ws: Path, capsys: pytest.CaptureFixture[str]
):
    capsys.readouterr()
    assert main(["report", "--dir", str(ws)]) == 0
    markdown = capsys.readouterr().out
    assert main(["report", "--json", "--dir", str(ws)]) == 0
    (row,) = json_lines(capsys.readouterr().out)
    assert row["markdown"] == markdown
    assert row["seq"] == 8 and row["run"] == "r1" and row["outcome"] == "aborted"
    # the level now: the run ended, so its level-3 escalation closed with it
    assert row["goal"] == "Add authentication" and row["level"] == 0
    assert row["started_ts"] == T0 and row["ended_ts"] == T0 + 50
    assert row["path"] == "memory/report.md"
    assert sum(row["tasks"].values()) == 1


def test_replay_explain_json_is_one_object_per_event(ws: Path, capsys: pytest.CaptureFixture[str]):
    capsys.readouterr()
    assert main(["replay", "--explain", "t1", "--dir", str(ws)]) == 0
    text = capsys.readouterr().out.splitlines()
    assert main(["replay", "--explain", "t1", "--json", "--dir", str(ws)]) == 0
    rows = json_lines(capsys.readouterr().out)
    assert len(rows) == len(text) == 3
    assert [(r["seq"], r["kind"]) for r in rows] == [
        (4, "task_submitted"),
        (5, "task_routed"),
        (7, "task_completed"),
    ]
    assert rows[1]["ts"] == T0 + 13 and rows[1]["story"].startswith("-> fast (cheapest)")
    assert rows[1]["story"] in text[1]


def test_watch_once_json_is_one_object(ws: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "swarmlog", "watch", "--once", "--json", "--dir", str(ws)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    (row,) = json_lines(proc.stdout)
    assert row["seq"] == 8 and row["run"] == "r1" and row["outcome"] == "aborted"
    assert row["phase"]["name"] == "execution" and row["phase"]["expected_s"] == 600
    assert row["phase"]["elapsed_s"] == 40.0  # from entering the phase to the end of the run
    assert row["agents"]["builder"]["status"]
    assert row["level"] == 0 and row["directive"]  # the run ended: its escalation closed


def test_log_alerts_json_is_one_object_per_alert(ws: Path, capsys: pytest.CaptureFixture[str]):
    capsys.readouterr()
    assert main(["log", "--alerts", "--dir", str(ws)]) == 0
    text = capsys.readouterr().out.splitlines()
    assert main(["log", "--alerts", "--json", "--dir", str(ws)]) == 0
    rows = json_lines(capsys.readouterr().out)
    assert [r["line"] for r in rows] == text
    assert [r["alert"] for r in rows] == ["EMERGENCY", "ABORT"]
    assert rows[0] == {
        "alert": "EMERGENCY",
        "seq": 6,
        "ts": T0 + 30,
        "kind": "escalation_raised",
        "run": "r1",
        "level": 3,
        "rule": "queue_depth",
        "text": "queue 60 > 50",
        "line": text[0],
    }
    assert rows[1]["kind"] == "run_ended" and rows[1]["text"] == "operator"
