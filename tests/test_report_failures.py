"""What did not get done is where a human reads in the morning: failed and cancelled tasks in
report.md (and a pointer in team-state.md), and a level-3 emergency's Director summary and Scribe
dump in memory/emergency.md and the escalation's ALERT file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
import test_runtime_team
from cli_helpers import run

from swarmlog.escalation.levels import EMPTY as ESC_EMPTY
from swarmlog.escalation.levels import apply as esc_apply
from swarmlog.escalation.levels import team_directive
from swarmlog.events import (
    AlertRaised,
    EscalationRaised,
    EventBase,
    HumanCommand,
    RunEnded,
    RunStarted,
    TaskCancelled,
    TaskClaimed,
    TaskCompleted,
    TaskFailed,
    TaskStarted,
    TaskSubmitted,
)
from swarmlog.log import FileLog
from swarmlog.render import EMERGENCY_PATH, make_environment, render_all, write_outputs
from swarmlog.state import project

T0 = 1_769_571_000.0
RUN = "night-fail"


def _stamp(events: list[EventBase]) -> list[EventBase]:
    return [
        msgspec.structs.replace(e, seq=i, ts=T0 + 10 * i, run=RUN)
        for i, e in enumerate(events, start=1)
    ]


def _attempt(task_id: str, agent: str, n: int, error: str, **kw: Any) -> list[EventBase]:
    return [
        TaskClaimed(task_id=task_id, agent=agent, attempt=n, lease_until=T0 + 10_000),
        TaskStarted(task_id=task_id, agent=agent, attempt=n, model="m"),
        TaskFailed(task_id=task_id, agent=agent, attempt=n, error=error, **kw),
    ]


LONG = "Traceback: " + "x" * 900 + " | `pipe` <tag>\nsecond line"


def _night(*, ended: bool = True) -> list[EventBase]:
    events: list[EventBase] = [
        RunStarted(goal="Add authentication", actor="scheduler"),
        TaskSubmitted(task_id="w-auth", title="Implement auth", role="builder", max_attempts=3),
        TaskSubmitted(task_id="w-docs", title="Write the docs", role="scribe", max_attempts=2),
        TaskSubmitted(task_id="w-api", title="Build the API", role="builder", deps=("w-auth",)),
        TaskSubmitted(task_id="w-ok", title="Research", role="scout"),
    ]
    for n in (1, 2, 3):
        events += _attempt("w-auth", "builder", n, "ImportError: cannot import name 'jwt'")
    events += _attempt("w-docs", "scribe", 1, LONG, retryable=False)
    events += [
        TaskCancelled(task_id="w-api", reason="a dependency failed: w-auth"),
        TaskClaimed(task_id="w-ok", agent="scout", lease_until=T0 + 10_000),
        TaskStarted(task_id="w-ok", agent="scout", model="m"),
        TaskCompleted(task_id="w-ok", agent="scout", summary="done"),
    ]
    if ended:
        events.append(RunEnded(outcome="completed", reason="review approved"))
    return _stamp(events)


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end >= 0 else len(text)]


def test_report_names_every_task_that_failed_for_good_or_was_cancelled(tmp_path: Path) -> None:
    state = project(_night())
    assert state.team.outcome == "completed"  # the run_ended contract is untouched
    write_outputs(tmp_path, render_all(state, make_environment(None)))
    report = (tmp_path / "memory" / "report.md").read_text(encoding="utf-8")

    assert "| Outcome | completed (2 tasks failed, 1 cancelled): review approved |" in report
    # Near the top: right after the outcome table, before the phases.
    assert report.index("## Unfinished work") < report.index("## Phases")
    section = _section(report, "## Unfinished work")
    rows = [line for line in section.splitlines() if line.startswith("| w-")]
    assert [r.split(" | ")[0] for r in rows] == ["| w-auth", "| w-docs", "| w-api"]
    auth, docs, api = rows
    assert "Implement auth" in auth and "builder" in auth and "failed" in auth
    assert "3 of 3" in auth and "ImportError: cannot import name 'jwt'" in auth
    assert "scribe" in docs and "1 of 2" in docs
    # A long, hostile error is one cut line that keeps the table a table.
    assert docs.count(" | ") == 5 and len(docs) < 400 and "…" in docs
    assert "<tag>" not in section and "second line" not in section
    assert "cancelled" in api and "a dependency failed: w-auth" in api and "0 of 3" in api
    assert "w-ok" not in section  # done work is not listed


def test_a_clean_night_has_no_unfinished_section_and_a_plain_outcome() -> None:
    events = [e for e in _night() if not isinstance(e, TaskFailed | TaskCancelled)]
    report = render_all(project(events), make_environment(None))["memory/report.md"]
    assert "## Unfinished work" not in report
    assert "| Outcome | completed: review approved |" in report


def test_one_failure_reads_in_the_singular_and_counts_while_the_night_runs() -> None:
    events = [e for e in _night(ended=False) if not isinstance(e, TaskCancelled)]
    events = [e for e in events if getattr(e, "task_id", "") != "w-docs"]
    files = render_all(project(events), make_environment(None))
    assert "| Outcome | in progress (1 task failed) |" in files["memory/report.md"]
    team = files["memory/team-state.md"]
    assert "1 task failed; see `memory/report.md`" in team


def test_team_state_points_to_the_unfinished_work() -> None:
    team = render_all(project(_night()), make_environment(None))["memory/team-state.md"]
    assert "(run ended: completed, 2 tasks failed, 1 cancelled)" in team
    assert "**Unfinished work:** 2 tasks failed, 1 cancelled; see `memory/report.md`." in team


def test_the_stuck_night_reports_its_failed_tasks_and_errors(tmp_path: Path) -> None:
    """The operator's audit: a real night (scheduler, seven agents, monitor on one file log)
    whose builder fails three tasks; `swarmlog render` must name them in report.md."""
    import asyncio

    events = asyncio.run(test_runtime_team._run_team(tmp_path, "stuck"))
    failed = {
        e.task_id
        for e in events
        if isinstance(e, TaskFailed) and "cannot import name 'jwt'" in e.error
    }
    assert {"w-auth", "w-session", "w-tokens"} <= failed
    assert run(tmp_path, "render") == 0
    report = (tmp_path / "memory" / "report.md").read_text(encoding="utf-8")
    section = _section(report, "## Unfinished work")
    for task_id in ("w-auth", "w-session", "w-tokens"):
        (row,) = [line for line in section.splitlines() if line.startswith(f"| {task_id} |")]
        assert "builder" in row and "3 of 3" in row and "cannot import name 'jwt'" in row
    assert re.search(r"\| Outcome \| completed \(\d+ tasks failed", report)
    events_outcomes = [e.outcome for e in events if isinstance(e, RunEnded)]
    assert events_outcomes == ["completed"]


# The emergency's promised outputs


ADVICE = (
    "Read the evidence: swarmlog log --after 4",
    "Fix the cause, then acknowledge so the team continues: swarmlog ack A1",
    "Resume all paused work: swarmlog resume",
    "Stop the run, keeping its state: swarmlog abort",
)


def _emergency(*, brief: str = "", dump: str = "", brief_error: str = "") -> list[EventBase]:
    events: list[EventBase] = [
        RunStarted(goal="Add authentication", actor="scheduler"),
        EscalationRaised(escalation_id="E2", level=3, rule="no_consensus", reason="split vote"),
        AlertRaised(
            alert_id="A1", level=3, rule="no_consensus", title="EMERGENCY level 3",
            summary="split vote", evidence=(2,), escalation_id="E2", advice=ADVICE,
            actions=("Scribe writes a full state dump and the Director a human-readable summary.",),
        ),
        TaskSubmitted(task_id="dump-E2", title="Full state dump (E2)", role="scribe",
                      task_kind="checkpoint_summary", phase="emergency#E2"),
        TaskSubmitted(task_id="brief-E2", title="Summary for the human (E2)", role="director",
                      task_kind="summary", phase="emergency#E2"),
        TaskClaimed(task_id="brief-E2", agent="director", lease_until=T0 + 10_000),
        TaskStarted(task_id="brief-E2", agent="director", model="m"),
    ]  # fmt: skip
    if brief:
        events.append(TaskCompleted(task_id="brief-E2", agent="director", summary=brief))
    if brief_error:
        events.append(
            TaskFailed(task_id="brief-E2", agent="director", error=brief_error, retryable=False)
        )
    if dump:
        events += [
            TaskClaimed(task_id="dump-E2", agent="scribe", lease_until=T0 + 10_000),
            TaskStarted(task_id="dump-E2", agent="scribe", model="m"),
            TaskCompleted(task_id="dump-E2", agent="scribe", summary=dump),
        ]
    return _stamp(events)


BRIEF = "The reviewers split three ways on the auth work.\nDecide: approve or send it back."
DUMP = "Phase review, iteration 0; 12 tasks done; open: E2."


def test_emergency_and_alert_quote_the_director_summary_and_the_scribe_dump(
    tmp_path: Path,
) -> None:
    env = make_environment(None)
    # While they are being written, both files say so, ...
    write_outputs(tmp_path, render_all(project(_emergency()), env))
    alert_file = next((tmp_path / "alerts").glob("ALERT-*.md"))
    before = alert_file.read_text(encoding="utf-8")
    emergency = (tmp_path / EMERGENCY_PATH).read_text(encoding="utf-8")
    for text in (before, emergency):
        assert "brief-E2" in text and "dump-E2" in text
        assert "The reviewers split" not in text
    # ... and once written, the same renderer (its alert cache included) quotes them.
    changed = write_outputs(tmp_path, render_all(project(_emergency(brief=BRIEF, dump=DUMP)), env))
    assert alert_file.relative_to(tmp_path).as_posix() in changed
    after = alert_file.read_text(encoding="utf-8")
    emergency = (tmp_path / EMERGENCY_PATH).read_text(encoding="utf-8")
    for text in (after, emergency):
        assert "The reviewers split three ways on the auth work.\nDecide:" in text
        assert DUMP in text
        assert text.index("Director") < text.index(BRIEF.splitlines()[0]) < text.index(DUMP)


def test_a_failed_summary_is_said_to_have_failed() -> None:
    files = render_all(project(_emergency(brief_error="model refused")), make_environment(None))
    alert = next(v for k, v in files.items() if k.startswith("alerts/"))
    assert "failed" in alert and "model refused" in alert


def test_alert_lists_each_command_once() -> None:
    files = render_all(project(_emergency()), make_environment(None))
    alert = next(v for k, v in files.items() if k.startswith("alerts/"))
    todo = _section(alert, "## What you should do")
    for command in ("swarmlog ack", "swarmlog resume", "swarmlog abort"):
        assert todo.count(command) == 1, (command, todo)


def test_the_conflict_night_shows_the_summary_and_dump_where_a_human_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator's audit: on the conflict night the human, called at level 3, finds the
    Director's summary and the Scribe's dump in emergency.md and the ALERT file (rendered by
    `swarmlog render`) before resuming."""
    import asyncio

    seen: dict[str, str] = {}

    async def human(log: FileLog) -> None:
        reader = log.reader(0)
        state = ESC_EMPTY
        events: list[EventBase] = []
        while True:
            for event in reader.poll():
                state = esc_apply(state, event)
                events.append(event)
            done = {e.task_id for e in events if isinstance(e, TaskCompleted)}
            if team_directive(state) == "waiting_for_human":
                waiting = {f"{p}-{eid}" for eid in state.open for p in ("dump", "brief")}
                if waiting <= done:
                    assert run(tmp_path, "render") == 0
                    seen["emergency"] = (tmp_path / EMERGENCY_PATH).read_text(encoding="utf-8")
                    for path in (tmp_path / "alerts").glob("ALERT-*.md"):
                        seen[path.name] = path.read_text(encoding="utf-8")
                    seen["summaries"] = "\n".join(
                        e.summary for e in events if isinstance(e, TaskCompleted)
                        and e.task_id.startswith(("dump-", "brief-"))
                    )  # fmt: skip
                    log.append([HumanCommand(command="resume", run="r1", actor="human")])
                    state = esc_apply(state, HumanCommand(command="resume"))
            await asyncio.sleep(0.05)

    monkeypatch.setattr(test_runtime_team, "_human_resumes", human)
    asyncio.run(test_runtime_team._run_team(tmp_path, "conflict"))
    assert seen, "the team never waited for a human with its emergency work done"
    summaries = [s for s in seen.pop("summaries").splitlines() if s]
    assert len(summaries) == 2
    alerts = [v for k, v in seen.items() if k.startswith("ALERT-")]
    assert alerts
    for text in (seen["emergency"], *alerts):
        for summary in summaries:
            assert summary in text
