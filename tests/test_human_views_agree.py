"""After a human acts (ack, pause, resume, abort), every view says the same (audit #9).

A stopped night waits for a human with three open level-3 alerts; the human's commands go through
the real CLI into a real log, and after each one ``alerts``, ``status``, ``watch --once``,
``memory/emergency.md``, ``memory/team-state.md`` and the alert files must agree on the level, the
team's directive, which escalations are open and which alerts are acknowledged. The views used to
fold the human's commands by two rules: the monitor's (``swarmlog.escalation.levels``: a command
takes effect when folded) and the rendered state's (which waited for the monitor's
``escalation_resolved``, never written on a stopped run, and ignored ``abort``).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from swarmlog.cli import main
from swarmlog.escalation import breakers, levels
from swarmlog.events import (
    AlertRaised,
    CircuitClosed,
    CircuitOpened,
    DetectorFired,
    EscalationRaised,
    EscalationResolved,
    EventBase,
    HumanCommand,
    PhaseEntered,
    RunEnded,
    RunStarted,
)
from swarmlog.log import FileLog
from swarmlog.runtime.monitor import Monitor
from swarmlog.state import project
from swarmlog.workspace import Workspace

HOST = os.uname().nodename
RUN = "night-9"


def night(*, pid: int = 0, started: float | None = None) -> list[EventBase]:
    """A night that waits for a human: E1 (level 1), E2-E4 (level 3) with alerts A1-A3."""
    t = started if started is not None else time.time() - 600
    out: list[EventBase] = [
        RunStarted(goal="g", run=RUN, host=HOST if pid else "", pid=pid, ts=t),
        PhaseEntered(phase="execution", expected_s=1800, run=RUN, ts=t + 1),
        EscalationRaised(escalation_id="E1", level=1, rule="stuck_calls", agent="scout",
                         reason="scout made 3 calls", run=RUN, ts=t + 2),
    ]  # fmt: skip
    for n, rule in enumerate(("model_outage", "budget", "no_consensus"), start=2):
        out += [
            EscalationRaised(escalation_id=f"E{n}", level=3, rule=rule, reason=f"{rule} happened",
                             run=RUN, ts=t + n * 10),
            AlertRaised(alert_id=f"A{n - 1}", level=3, rule=rule, escalation_id=f"E{n}",
                        title=f"EMERGENCY level 3: {rule}", run=RUN, ts=t + n * 10),
        ]  # fmt: skip
    return out


def make_ws(tmp_path: Path, events: list[EventBase]) -> Path:
    ws = tmp_path / "ws"
    assert main(["init", "--dir", str(ws), "--no-detect"]) == 0
    with FileLog(ws / "memory" / "events") as log:
        log.append(events)
    return ws


def cli(ws: Path, capsys: pytest.CaptureFixture[str], *argv: str, rc: int = 0) -> str:
    capsys.readouterr()
    assert main([*argv, "--dir", str(ws)]) == rc, capsys.readouterr()
    return capsys.readouterr().out


def count(ws: Path) -> int:
    with FileLog(ws / "memory" / "events", create=False) as log:
        return log.last_seq()


def views(ws: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    """What each view says: level, directive, emergency, open escalations, unacked alerts."""
    out: dict[str, dict[str, Any]] = {}
    rows = [json.loads(x) for x in cli(ws, capsys, "alerts", "--json").splitlines()]
    team = cli(ws, capsys, "alerts").splitlines()[-1]
    m = re.fullmatch(r"team: (\w+) \(level (\d)\)", team)
    assert m, team
    out["alerts"] = {
        "level": int(m[2]),
        "directive": m[1],
        "unacked": sorted(r["alert_id"] for r in rows if r["status"] != "acked"),
    }
    st_ = json.loads(cli(ws, capsys, "status", "--json"))
    out["status"] = {
        "level": st_["level"],
        "emergency": st_["emergency"],
        "paused": st_["paused"],
        "unacked": st_["unacked_alerts"],
        "escalations": sum(b.startswith("Escalation level") for b in st_["blockers"]),
    }
    w = json.loads(cli(ws, capsys, "watch", "--once", "--json"))
    out["watch"] = {
        "level": w["level"],
        "directive": w["directive"],
        "paused": w["paused"],
        "unacked": w["unacked_alerts"],
    }
    cli(ws, capsys, "render")
    emergency = ws / "memory" / "emergency.md"
    md: dict[str, Any] = {"emergency": emergency.exists(), "escalations": [], "unacked": []}
    if emergency.exists():
        text = emergency.read_text()
        head, _, rest = text.partition("## Unacknowledged alerts")
        md["level"] = int(re.search(r"escalation level (\d)", text)[1])  # type: ignore[index]
        md["escalations"] = re.findall(r"^\| (E\d) \|", head, re.M)
        md["unacked"] = re.findall(r"^\| (A\d) \|", rest, re.M)
    team_md = (ws / "memory" / "team-state.md").read_text()
    lm = re.search(r"\*\*Escalation level (\d)\*\*", team_md)
    md["team_state_level"] = int(lm[1]) if lm else 0
    md["alert_files_unacked"] = sorted(
        re.search(r"# ALERT (A\d)", p.read_text())[1]  # type: ignore[index]
        for p in (ws / "alerts").glob("ALERT-*.md")
        if "| Acknowledged | no |" in p.read_text()
    )
    out["markdown"] = md
    return out


def agree(
    v: dict[str, dict[str, Any]], *, level: int, directive: str, escalations: list[str],
    unacked: list[str], emergency: bool, paused: bool = False,
) -> None:  # fmt: skip
    assert v["alerts"] == {"level": level, "directive": directive, "unacked": unacked}
    assert v["status"]["level"] == level
    assert v["status"]["emergency"] is emergency
    assert v["status"]["paused"] is paused
    assert v["status"]["unacked"] == unacked
    assert v["status"]["escalations"] == len(escalations)
    assert v["watch"] == {
        "level": level, "directive": directive, "paused": paused, "unacked": len(unacked),
    }  # fmt: skip
    md = v["markdown"]
    assert md["emergency"] is emergency
    if emergency:
        assert md["level"] == level
        assert md["escalations"] == escalations
        assert md["unacked"] == unacked
    assert md["team_state_level"] == level
    assert md["alert_files_unacked"] == unacked


def test_every_view_agrees_after_ack_resume_and_abort(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = make_ws(tmp_path, night())
    cli(ws, capsys, "render")  # a snapshot: later views fold the commands onto it
    every = ["A1", "A2", "A3"]
    agree(views(ws, capsys), level=3, directive="waiting_for_human",
          escalations=["E1", "E2", "E3", "E4"], unacked=every, emergency=True)  # fmt: skip

    cli(ws, capsys, "ack", "A1")  # closes E2 with it
    agree(views(ws, capsys), level=3, directive="waiting_for_human",
          escalations=["E1", "E3", "E4"], unacked=["A2", "A3"], emergency=True)  # fmt: skip

    cli(ws, capsys, "pause", "checking the GPU box")
    agree(views(ws, capsys), level=3, directive="paused", escalations=["E1", "E3", "E4"],
          unacked=["A2", "A3"], emergency=True, paused=True)  # fmt: skip

    cli(ws, capsys, "resume")  # closes every level-3 escalation and acknowledges their alerts
    agree(views(ws, capsys), level=1, directive="run", escalations=["E1"], unacked=[],
          emergency=False)  # fmt: skip

    cli(ws, capsys, "ack", "all")
    agree(views(ws, capsys), level=0, directive="run", escalations=[], unacked=[],
          emergency=False)  # fmt: skip
    assert not (ws / "memory" / "emergency.md").exists()
    report = (ws / "memory" / "report.md").read_text()
    resumed = re.findall(
        r"\| (E\d) \| 3 \|.*\| seq \d+ by human: the human resumed the team \|", report
    )
    assert resumed == ["E3", "E4"]  # E2 went with the ack of A1
    assert "**open**" not in report

    cli(ws, capsys, "abort", "wrong goal")
    agree(views(ws, capsys), level=4, directive="aborting", escalations=[], unacked=[],
          emergency=False)  # fmt: skip


def test_the_audit_sequence_ack_all_then_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = make_ws(tmp_path, night())
    cli(ws, capsys, "render")
    cli(ws, capsys, "ack", "all")
    cli(ws, capsys, "resume")
    agree(views(ws, capsys), level=0, directive="run", escalations=[], unacked=[],
          emergency=False)  # fmt: skip
    status = cli(ws, capsys, "status")
    assert "escalation level 0 (normal)\n" in status and "EMERGENCY" not in status
    assert "blocker: Escalation" not in status


def test_ack_twice_records_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = make_ws(tmp_path, night())
    first = cli(ws, capsys, "ack", "A1")
    assert "recorded" in first
    seq = count(ws)
    again = cli(ws, capsys, "ack", "A1")
    assert again == f"A1 is already acknowledged (by human at seq {seq}); nothing recorded\n"
    assert count(ws) == seq
    # E2 went with A1; naming it now changes nothing either.
    assert "nothing recorded" in cli(ws, capsys, "ack", "E2")
    row = json.loads(cli(ws, capsys, "ack", "A1", "--json"))
    assert row["recorded"] is False and row["seq"] is None
    assert count(ws) == seq
    cli(ws, capsys, "ack", "all")
    assert count(ws) == seq + 1
    assert cli(ws, capsys, "ack", "all").startswith("nothing to acknowledge")
    assert count(ws) == seq + 1


def test_an_alert_resolved_by_the_team_still_takes_a_human_ack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = [*night(), EscalationResolved(escalation_id="E2", by="director", run=RUN)]
    ws = make_ws(tmp_path, events)
    v = views(ws, capsys)
    assert v["alerts"]["unacked"] == ["A1", "A2", "A3"]  # A1 is resolved, not acknowledged
    assert "A1" in cli(ws, capsys, "alerts", "--open")
    assert "recorded" in cli(ws, capsys, "ack", "A1")
    assert views(ws, capsys)["alerts"]["unacked"] == ["A2", "A3"]


def test_commands_without_a_run_in_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = make_ws(tmp_path, [*night(), RunEnded(outcome="completed", run=RUN)])
    seq = count(ws)
    for command in ("pause", "resume", "abort"):
        assert main([command, "--dir", str(ws)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [
            f"swarmlog: error: nothing to {command}: run {RUN} already ended (completed); "
            f"start {'a new one' if command == 'resume' else 'one'} with 'swarmlog run GOAL'"
        ]
    assert count(ws) == seq
    # An ack still marks the alert acknowledged, and says nobody acts on it.
    out = cli(ws, capsys, "ack", "A2")
    assert out == (
        f"{seq + 1} ack A2: recorded; run {RUN} already ended (completed), so nothing acts on "
        "it beyond the record\n"
    )
    assert views(ws, capsys)["alerts"]["unacked"] == ["A1", "A3"]

    empty = make_ws(tmp_path / "empty", [])
    assert main(["pause", "--dir", str(empty)]) == 1
    assert "nothing to pause: the log has no run" in capsys.readouterr().err
    assert count(empty) == 0


def test_a_stopped_run_says_nothing_acts_and_abort_ends_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # This process's pid, recorded before it started: that supervisor is gone (the pid was reused).
    ws = make_ws(tmp_path, night(pid=os.getpid(), started=time.time() - 3600))
    gone = f"supervisor pid {os.getpid()} on {HOST} is gone"
    out = cli(ws, capsys, "pause")
    assert out.endswith(
        f"pause: recorded; {gone}, so nothing acts on it until 'swarmlog run --resume' "
        "continues the run\n"
    )
    row = json.loads(cli(ws, capsys, "resume", "--json"))
    assert row["run_state"] == "stopped" and row["recorded"] is True
    seq = count(ws)
    out = cli(ws, capsys, "abort", "wrong goal")
    assert out == (
        f"{seq + 1} abort: recorded; {gone}, so the run ends here (run_ended at seq {seq + 4}); "
        "start a new one with 'swarmlog run GOAL'\n"
    )
    with FileLog(ws / "memory" / "events", create=False) as log:
        *_, cmd, raised, alert, end = log.read()
    # What the dead monitor would have raised, then what the dead supervisor would have written.
    assert isinstance(cmd, HumanCommand) and cmd.command == "abort"
    assert isinstance(raised, EscalationRaised) and (raised.level, raised.rule) == (
        4,
        "human_abort",
    )
    assert isinstance(alert, AlertRaised) and alert.escalation_id == raised.escalation_id == "E5"
    assert isinstance(end, RunEnded) and end.outcome == "aborted" and "wrong goal" in end.reason
    # The run ended: its escalations closed with it; the abort's level and unacked alert remain.
    agree(views(ws, capsys), level=4, directive="aborting", escalations=[],
          unacked=["A4"], emergency=True)  # fmt: skip
    status = json.loads(cli(ws, capsys, "status", "--json"))
    assert status["outcome"] == "aborted"
    assert main(["abort", "--dir", str(ws)]) == 1
    assert "already ended (aborted)" in capsys.readouterr().err

    # The next run's monitor folds the log from the start: it derives the same abort reaction
    # again (nothing new), and the old run's records do not escalate, halt or abort the new one.
    with FileLog(ws / "memory" / "events", create=False) as log:
        log.append([RunStarted(goal="again", run="night-10", actor="supervisor")])
        Monitor(Workspace(ws), log, sample=False).step()
    agree(views(ws, capsys), level=0, directive="run", escalations=[], unacked=["A4"],
          emergency=True)  # fmt: skip
    cli(ws, capsys, "ack", "all")
    agree(views(ws, capsys), level=0, directive="run", escalations=[], unacked=[],
          emergency=False)  # fmt: skip


def test_a_live_run_is_told_the_team_obeys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = make_ws(tmp_path, night(pid=os.getpid(), started=time.time()))  # we are the supervisor
    out = cli(ws, capsys, "abort")
    assert out.endswith("abort: recorded; the team obeys when its monitor reads it\n")
    with FileLog(ws / "memory" / "events", create=False) as log:
        assert not any(isinstance(e, RunEnded) for e in log.read())  # the supervisor ends it


# Random event sequences: the rendered projection follows the monitor's rule exactly, and its
# phase and run circuits follow the breakers' fold.

_IDS = st.sampled_from(["E1", "E2", "E3"])
_ALERTS = st.sampled_from(["A1", "A2", "A3"])
_RUNS = st.sampled_from([RUN, RUN, "night-10"])  # night-10: another run
_EVENTS = st.one_of(
    st.builds(lambda e, lv, r: EscalationRaised(escalation_id=e, level=lv, rule="r", run=r),
              _IDS, st.integers(1, 4), _RUNS),
    st.builds(lambda a, e, lv: AlertRaised(alert_id=a, level=lv, rule="r", title="t",
                                           escalation_id=e, run=RUN),
              _ALERTS, st.one_of(_IDS, st.just("")), st.integers(2, 4)),
    st.builds(lambda e, by: EscalationResolved(escalation_id=e, by=by, run=RUN),
              _IDS, st.sampled_from(["human", "director", ""])),
    st.builds(lambda c, t, r: HumanCommand(command=c, target=t, actor="human", run=r),
              st.sampled_from(["ack", "pause", "resume", "abort"]),
              st.sampled_from(["", "all", "E1", "E2", "A1", "A3"]), _RUNS),
    st.builds(lambda r, again: RunStarted(goal="g", run=r, resumed=again), _RUNS, st.booleans()),
    st.builds(lambda r: DetectorFired(detector="stuck_calls", agent="scout", level=1, run=r),
              _RUNS),
    st.builds(lambda sc, t, r: CircuitOpened(scope=sc, target=t, run=r),
              st.sampled_from(["phase", "run"]), st.sampled_from(["execution", RUN]), _RUNS),
    st.builds(lambda sc, t: CircuitClosed(scope=sc, target=t, run=RUN),
              st.sampled_from(["phase", "run"]), st.sampled_from(["execution", RUN])),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(_EVENTS, max_size=30))
def test_the_rendered_state_follows_the_monitors_rule(events: list[EventBase]) -> None:
    stamped = [
        replace(e, seq=i, ts=1e9 + i)
        for i, e in enumerate([RunStarted(goal="g", run=RUN), *events], start=1)
    ]
    rule = levels.project(stamped)  # type: ignore[arg-type]
    s = project(stamped)
    a = s.alerts
    assert a.escalations.open == rule.open and a.escalations.alerts == rule.alerts
    assert set(a.open) == set(rule.open)
    assert {x.escalation_id for x in a.closed} <= {
        e.escalation_id for e in stamped if isinstance(e, EscalationRaised)
    }
    assert a.level == rule.level and s.team.paused == rule.paused
    assert {k: x.acked for k, x in a.alerts.items()} == {k: x.acked for k, x in rule.alerts.items()}
    assert levels.team_directive(a.escalations) == levels.team_directive(rule)
    assert bool(a.emergency_since) == (
        any(x.level >= 2 for x in rule.open.values())
        or any(x.level >= 3 and not x.acked for x in rule.alerts.values())
    )
    assert {k for k in s.team.blockers if k.startswith("escalation:")} == {
        f"escalation:{k}" for k in rule.open
    }
    assert ("human:pause" in s.team.blockers) == rule.paused
    circuits = breakers.project(stamped)  # type: ignore[arg-type]
    assert {k for k in s.team.blockers if k.startswith("circuit:")} == {
        f"circuit:{c.scope}:{c.target}" for c in circuits.circuits.values()
    }
