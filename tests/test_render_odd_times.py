"""An event whose ``ts`` no date can hold, already in a log, does not stop its views (audit #4).

The log is append-only: an event stamped 1e308 or 1e12 (by a script, or an older swarmlog that
took any number) stays for good. render, report and status show such a time as the number it is.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from swarmlog.cli import main
from swarmlog.events import (
    AlertRaised,
    CheckpointWritten,
    DecisionMade,
    Note,
    PhaseEntered,
    RunEnded,
    TaskCompleted,
    TaskStarted,
    TaskSubmitted,
    TrustChanged,
)
from swarmlog.log import FileLog
from swarmlog.render import fmt_duration, fmt_ts

REPO = Path(__file__).resolve().parent.parent
ODD = [1e308, -1e308, 1e19, 1e12, -1e12]


def _night_with(tmp_path: Path, ts: float) -> Path:
    """The committed example night, then events of every dated kind stamped ``ts``."""
    ws = tmp_path / "night"
    (ws / "memory" / "events").mkdir(parents=True)
    for segment in sorted((REPO / "memory" / "events").glob("*.ndjson")):
        shutil.copy(segment, ws / "memory" / "events" / segment.name)
    log = FileLog(ws / "memory" / "events", sync="none")
    run = log.read().__next__().run
    log.append(
        [
            Note(ts=ts, run=run, text="stamped by a script"),
            PhaseEntered(ts=ts, run=run, phase="iteration", iteration=2),
            TaskSubmitted(ts=ts, run=run, task_id="odd-1", title="odd times"),
            TaskStarted(ts=ts, run=run, task_id="odd-1", agent="builder"),
            TaskCompleted(ts=ts, run=run, task_id="odd-1", agent="builder"),
            CheckpointWritten(ts=ts, run=run, checkpoint_id="C-odd", trigger="t", summary="s"),
            DecisionMade(ts=ts, run=run, decision_id="D-odd", subject="s", outcome="o", rule="r"),
            TrustChanged(ts=ts, run=run, agent="builder", old=7, new=8, reason="r"),
            AlertRaised(ts=ts, run=run, alert_id="A-odd", level=3, rule="r", title="odd"),
            RunEnded(ts=ts, run=run, outcome="completed"),
        ]
    )
    log.close()
    return ws


@pytest.mark.parametrize("ts", ODD, ids=repr)
def test_render_report_and_status_show_the_raw_number(
    tmp_path: Path, ts: float, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = _night_with(tmp_path, ts)
    assert main(["--dir", str(ws), "render"]) == 0
    team_state = (ws / "memory" / "team-state.md").read_text()
    assert f"({ts!r} UTC)" in team_state  # the state's time is the last event's
    assert f"## Last Checkpoint: {ts!r} (t, seq" in team_state
    assert f"## {ts!r} · s" in (ws / "memory" / "decisions.md").read_text()
    alert = ws / "alerts" / f"ALERT-{ts!r}-483.md"
    assert alert.is_file() and f"| Raised | {ts!r} UTC" in alert.read_text()
    report = (ws / "memory" / "report.md").read_text()
    assert f"- {ts!r} : stamped by a script" in report
    capsys.readouterr()
    assert main(["--dir", str(ws), "report"]) == 0
    assert capsys.readouterr().out == report
    assert main(["--dir", str(ws), "status"]) == 0
    assert "at seq 484" in capsys.readouterr().out
    assert main(["--dir", str(ws), "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["seq"] == 484


def test_the_filters_show_what_no_date_or_duration_holds() -> None:
    assert fmt_ts(1e308) == "1e+308" and fmt_ts(1e12) == "1000000000000.0"
    assert fmt_ts(math.nan) == "nan" and fmt_ts(math.inf, "%Y%m%dT%H%M%SZ") == "inf"
    assert fmt_ts(1_769_572_800.0) == "2026-01-28 04:00:00" and fmt_ts(0.0) == "-"
    assert fmt_duration(math.inf) == "infs" and fmt_duration(math.nan) == "nans"
    assert fmt_duration(2e308 - 1e308) == "infs" and fmt_duration(1e300) == "1e+300s"
    assert fmt_duration(3723.4) == "1h 02m 03s" and fmt_duration(-5) == "0s"
