"""A workspace's second night: its morning report is about that night only."""

from __future__ import annotations

import msgspec

from swarmlog.events import (
    DecisionMade,
    MessageSent,
    PhaseEntered,
    RunEnded,
    RunStarted,
    TrustChanged,
)
from swarmlog.render import make_environment, render_all
from swarmlog.state import project


def _night(run: str) -> list[object]:
    return [
        RunStarted(goal="g", run=run),
        PhaseEntered(phase="planning", run=run),
        MessageSent(msg_id=f"{run}-m", sender="director", to="ALL", type="STATUS", run=run),
        TrustChanged(agent="builder", old=7, new=6, reason="timed out", run=run),
        DecisionMade(
            decision_id=f"{run}-d",
            subject=f"plan of {run}",
            outcome="approve",
            rule="director",
            run=run,
        ),
        RunEnded(outcome="completed", run=run),
    ]


def test_the_second_nights_state_holds_only_its_own_trust_messages_and_phases() -> None:
    events = [
        msgspec.structs.replace(e, seq=n, ts=1000.0 + n)  # type: ignore[type-var]
        for n, e in enumerate([*_night("r1"), *_night("r2")], start=1)
    ]
    s = project(events)  # type: ignore[arg-type]
    assert s.team.run == "r2"
    assert s.messages.sent == 1
    assert [c.seq for c in s.trust.changes] == [10]
    assert [p.seq for p in s.phases.spans] == [8]
    # A resumed run keeps what its night already had.
    resumed = msgspec.structs.replace(events[6], seq=13, resumed=True)
    s = project([*events[:-1], resumed])  # type: ignore[arg-type]
    assert s.messages.sent == 1 and len(s.trust.changes) == 1


def test_the_decision_log_keeps_every_night_under_its_run_and_the_report_only_tonights() -> None:
    events = [
        msgspec.structs.replace(e, seq=n, ts=1000.0 + n)  # type: ignore[type-var]
        for n, e in enumerate([*_night("r1"), *_night("r2")], start=1)
    ]
    files = render_all(project(events), make_environment(None))  # type: ignore[arg-type]
    log = files["memory/decisions.md"]
    assert log.index("## Night r1") < log.index("plan of r1") < log.index("## Night r2")
    assert log.index("## Night r2") < log.index("plan of r2")
    report = files["memory/report.md"]
    assert "plan of r2" in report and "plan of r1" not in report
