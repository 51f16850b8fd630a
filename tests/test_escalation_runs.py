"""A run that is over never escalates, pauses, halts or aborts the next one.

A monitor folds the log from seq 0 and appends its rules' reactions to every event it reads, old
ones included; a new run's monitor therefore appends again, after the new run_started, the
reactions to the previous run's firings and to its human's abort, stamped with that run's id.
Those records, and a human's command stamped with a run that is over, change nothing in the run in
progress: not its level, directive or circuits (the monitor's and the breakers' folds), nor what
status, watch and the Markdown show (the rendered state).
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from swarmlog.escalation import breakers, levels
from swarmlog.escalation.pipeline import project as emergency_project
from swarmlog.events import (
    AlertRaised,
    CircuitOpened,
    DetectorFired,
    EscalationRaised,
    Event,
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


def monitor_pass(ws: Workspace, log: FileLog) -> None:
    """One monitor process's life: fold the whole log, append the reactions."""
    Monitor(ws, log, sample=False).step()


def read(log: FileLog) -> list[Event]:
    return list(log.read())


def test_a_new_run_is_not_aborted_or_halted_by_the_last_ones_records(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.events.mkdir(parents=True)
    with FileLog(ws.events) as log:
        log.append(
            [
                RunStarted(goal="first", run="r1", actor="supervisor"),
                PhaseEntered(phase="execution", run="r1", actor="scheduler"),
                DetectorFired(detector="model_outage", level=3, model="deep", message="deep is out",
                              run="r1", actor="monitor"),
            ]
        )  # fmt: skip
        monitor_pass(ws, log)  # r1's monitor: E1 (level 3), its alert, the run circuit
        log.append([HumanCommand(command="abort", run="r1", actor="human")])
        monitor_pass(ws, log)  # ... and the abort's level-4 escalation
        log.append(
            [
                RunEnded(outcome="aborted", run="r1", actor="scheduler"),
                RunStarted(goal="second", run="r2", actor="supervisor"),
            ]
        )
        monitor_pass(ws, log)  # r2's monitor folds r1 again: its reactions are already stored
        start = log.last_seq()
        assert [type(e) for e in read(log)][-1] is RunStarted
        # Monitors before idempotent reactions appended r1's reactions again after r2 began; such
        # a log must not abort or halt r2 either.
        again = [
            msgspec.structs.replace(e, key=None)
            for e in read(log)
            if isinstance(e, EscalationRaised | AlertRaised | CircuitOpened)
        ]
        log.append(again)
        events = read(log)
    replayed = [e for e in events if e.seq > start]
    assert any(isinstance(e, EscalationRaised) and e.level == 4 for e in replayed)
    assert any(isinstance(e, CircuitOpened) and e.scope == "run" for e in replayed)

    esc = levels.project(events)
    assert (esc.level, levels.team_directive(esc), esc.open) == (0, "run", {})
    brk = emergency_project(events).breakers
    assert not breakers.is_halted(brk, "execution")
    s = project(events)
    assert (s.alerts.level, s.team.paused, s.alerts.open) == (0, False, {})
    assert s.team.blockers == {}
    assert s.alerts.max_level == 4 and len(s.alerts.closed) == 2  # r1's, closed when r2 started


def test_a_command_for_a_run_that_is_over_leaves_the_new_one_alone() -> None:
    events: list[EventBase] = [
        RunStarted(goal="first", run="r1", seq=1),
        RunEnded(outcome="completed", run="r1", seq=2),
        RunStarted(goal="second", run="r2", seq=3),
        HumanCommand(command="pause", run="r1", actor="human", seq=4),
        HumanCommand(command="abort", run="r1", actor="human", seq=5),
    ]
    esc = levels.project(events)  # type: ignore[arg-type]
    assert levels.team_directive(esc) == "run"
    s = project(events)
    assert (s.alerts.level, s.team.paused) == (0, False)
    # The same commands naming the run in progress, or no run, act on it.
    for run in ("r2", ""):
        cmd = HumanCommand(command="pause", run=run, actor="human", seq=6)
        assert levels.team_directive(levels.apply(esc, cmd)) == "paused"


def test_a_restarted_monitor_raises_nothing_twice(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.events.mkdir(parents=True)
    with FileLog(ws.events) as log:
        log.append(
            [
                RunStarted(goal="g", run="r1", actor="supervisor"),
                PhaseEntered(phase="execution", run="r1", actor="scheduler"),
                DetectorFired(detector="model_outage", level=3, model="deep", message="deep is out",
                              run="r1", actor="monitor"),
            ]
        )  # fmt: skip
        monitor_pass(ws, log)
        first = read(log)
        assert [type(e).__name__ for e in first[3:]] == [
            "EscalationRaised",
            "AlertRaised",
            "CircuitOpened",
        ]
        # A --resume, a restart or a crash starts a new monitor, which folds the log again.
        monitor_pass(ws, log)
        monitor_pass(ws, log)
        assert read(log) == first


def test_the_readmes_limits_budget_is_enforced_like_escalation_budget(tmp_path: Path) -> None:
    from swarmlog.config import parse_config
    from swarmlog.events import ConfigLoaded, DetectorFired, ModelCallFinished

    ws = Workspace(tmp_path)
    ws.events.mkdir(parents=True)
    config = parse_config({"limits": {"budget": {"tokens": 1000}}}).to_event_dict()
    with FileLog(ws.events) as log:
        log.append(
            [
                RunStarted(goal="g", run="r1", actor="supervisor"),
                ConfigLoaded(config=config, run="r1", actor="supervisor"),
                ModelCallFinished(model="fast", prompt_tokens=900, completion_tokens=300,
                                  run="r1", actor="builder"),
            ]
        )  # fmt: skip
        monitor_pass(ws, log)
        fired = [e for e in read(log) if isinstance(e, DetectorFired)]
    assert [(e.detector, e.value, e.threshold) for e in fired] == [("budget_tokens", 1200, 1000)]


def test_config_check_refuses_two_budgets_that_disagree(tmp_path: Path, capsys) -> None:
    from swarmlog.cli import main

    (tmp_path / "swarmlog.toml").write_text(
        '[models.m]\nendpoint = "http://127.0.0.1:9"\nmodel = "m"\n'
        "[limits.budget]\ntokens = 1000\n[escalation.budget]\ntokens = 2000\n"
    )
    assert main(["config", "check", "--dir", str(tmp_path)]) == 1
    assert "limits.budget.tokens = 1000 but escalation.budget.tokens = 2000" in (
        capsys.readouterr().err
    )


def test_config_check_refuses_a_webhook_below_the_level_alerts_start_at(
    tmp_path: Path, capsys
) -> None:
    from swarmlog.cli import main

    models = '[models.m]\nendpoint = "http://127.0.0.1:9"\nmodel = "m"\n'
    hook = '[[alerts.webhooks]]\nname = "phone"\nurl = "http://127.0.0.1:9/h"\nmin_level = 1\n'
    (tmp_path / "swarmlog.toml").write_text(models + hook)
    assert main(["config", "check", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "alerts.webhooks.0.min_level = 1 (webhook 'phone') but alerts start at" in err
    assert "escalation.alert_file_min_level = 3" in err
    # Alerts from level 1 up: the hook hears of level 1, and the config passes.
    (tmp_path / "swarmlog.toml").write_text(
        models + hook + "[escalation]\nalert_file_min_level = 1\n"
    )
    assert main(["config", "check", "--dir", str(tmp_path)]) == 0
