"""Escalation levels, phase/run circuit breakers, the monitor pipeline and settings (issue 7)."""

from __future__ import annotations

from typing import Any

import pytest

from swarmlog.errors import ConfigError
from swarmlog.escalation import breakers, levels, pipeline
from swarmlog.escalation.levels import alert_line, team_directive
from swarmlog.escalation.settings import (
    EscalationSettings,
    alert_settings,
    escalation_settings,
    redact_text,
    redact_url,
)
from swarmlog.events import (
    AgentRegistered,
    AlertRaised,
    CircuitClosed,
    CircuitOpened,
    DecisionMade,
    DetectorFired,
    EscalationRaised,
    EscalationResolved,
    EventBase,
    HardwareSampled,
    HumanCommand,
    MessageSent,
    ModelCallFinished,
    PhaseEntered,
    PositionTaken,
    RunEnded,
    RunStarted,
    TaskClaimed,
    TrustChanged,
)
from swarmlog.log import MemoryLog
from swarmlog.runtime.flow import team_may_work

T0 = 1_795_000_000.0


class Run:
    """A memory log with the monitor pipeline folded over it, reactions appended until quiet."""

    def __init__(self, settings: EscalationSettings | None = None) -> None:
        self.log = MemoryLog(clock=lambda: T0)
        self.state = pipeline.EMPTY
        self.settings = settings or EscalationSettings()
        self.reader = self.log.reader()

    def add(self, *events: EventBase) -> list[Any]:
        """Append events, let the monitor react to everything new, return what it appended."""
        self.log.append([_with_run(e) for e in events])
        added: list[Any] = []
        while batch := self.reader.poll():
            for event in batch:
                self.state, out = pipeline.react(self.state, event, self.settings)
                if out:
                    added += self.log.append(out)
        return added

    @property
    def esc(self) -> levels.EscalationState:
        return self.state.escalation


def _with_run(e: EventBase) -> EventBase:
    fields = {f: getattr(e, f) for f in e.__struct_fields__}
    return type(e)(**{**fields, "run": "night-1"})


def kinds(events: list[Any], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def stuck_calls(n: int, agent: str = "builder") -> list[ModelCallFinished]:
    return [ModelCallFinished(model="qwen", agent=agent) for _ in range(n)]


# Levels


def test_stuck_escalates_one_to_two_after_two_failed_recoveries() -> None:
    run = Run()
    first = run.add(*stuck_calls(3))
    raised = kinds(first, EscalationRaised)
    assert [(e.escalation_id, e.level, e.rule) for e in raised] == [("E1", 1, "stuck_calls")]
    assert kinds(first, AlertRaised) == []  # below alert_file_min_level
    assert team_directive(run.esc) == "run" and run.esc.level == 1
    # Recovery 1 fails (it recurs): still level 1.
    assert kinds(run.add(*stuck_calls(3)), EscalationRaised) == []
    # Recovery 2 fails: level 2, same escalation.
    again = kinds(run.add(*stuck_calls(3)), EscalationRaised)
    assert [(e.escalation_id, e.level) for e in again] == [("E1", 2)]
    assert "2 failed recovery attempts" in again[0].reason
    assert run.esc.level == 2 and run.esc.open["E1"].firings == 1
    # Two more failures at level 2 take it to the human.
    run.add(*stuck_calls(3))
    out = run.add(*stuck_calls(3))
    assert [e.level for e in kinds(out, EscalationRaised)] == [3]
    assert len(kinds(out, AlertRaised)) == 1
    assert team_directive(run.esc) == "waiting_for_human"


def test_other_agents_issues_are_separate_escalations() -> None:
    run = Run()
    run.add(*stuck_calls(3, "builder"), *stuck_calls(3, "scout"))
    assert sorted(e.agent for e in run.esc.open.values()) == ["builder", "scout"]


def test_runaway_fires_level_two_then_three() -> None:
    run = Run()
    claims = [
        TaskClaimed(task_id="t9", agent="builder", lease_until=0, attempt=n) for n in range(1, 7)
    ]
    out = run.add(*claims)
    assert [(e.level, e.rule) for e in kinds(out, EscalationRaised)] == [(2, "task_attempts")]
    assert run.esc.level == 2
    out = run.add(TaskClaimed(task_id="t9", agent="scout", lease_until=0, attempt=7))
    assert [(e.escalation_id, e.level) for e in kinds(out, EscalationRaised)] == [("E1", 3)]
    alert = kinds(out, AlertRaised)[0]
    assert alert.level == 3 and alert.escalation_id == "E1"
    assert any(isinstance(e, CircuitOpened) and e.scope == "run" for e in out)


def test_budget_goes_to_the_human_and_ack_resolves() -> None:
    run = Run()
    out = run.add(
        RunStarted(goal="g", budget_tokens=10),
        ModelCallFinished(model="m", agent="b", prompt_tokens=11),
    )
    alert = kinds(out, AlertRaised)[0]
    assert (alert.level, alert.rule, alert.alert_id) == (3, "budget_tokens", "A1")
    assert f"swarmlog ack {alert.alert_id}" in " ".join(alert.advice)
    assert "swarmlog resume" in " ".join(alert.advice)
    assert "swarmlog abort" in " ".join(alert.advice)
    assert alert.actions == levels.LEVEL_ACTIONS[3]
    assert alert.evidence[-1] == kinds(out, DetectorFired)[0].seq
    assert team_directive(run.esc) == "waiting_for_human"
    assert breakers.is_halted(run.state.breakers)
    out = run.add(HumanCommand(command="ack", target="A1", actor="human"))
    resolved = kinds(out, EscalationResolved)
    assert [(e.escalation_id, e.by) for e in resolved] == [("E1", "human")]
    assert run.esc.alerts["A1"].status == "acked"
    assert team_directive(run.esc) == "run" and run.esc.level == 0
    assert [e.scope for e in kinds(out, CircuitClosed)] == ["run"]
    assert not breakers.is_halted(run.state.breakers)


def test_ack_of_unknown_id_does_nothing() -> None:
    run = Run()
    run.add(*stuck_calls(3))
    assert run.add(HumanCommand(command="ack", target="A99")) == []
    assert run.esc.level == 1


def test_abort_goes_to_level_four_and_stays() -> None:
    run = Run()
    out = run.add(HumanCommand(command="abort", text="wrong goal", actor="human"))
    raised = kinds(out, EscalationRaised)
    assert [(e.level, e.rule) for e in raised] == [(4, "human_abort")]
    alert = kinds(out, AlertRaised)[0]
    assert alert_line(alert) is not None and alert_line(alert).startswith("ABORT level=4")  # type: ignore[union-attr]
    assert team_directive(run.esc) == "aborting" and run.esc.level == 4
    # Nothing escalates further once aborting, and resume does not undo an abort.
    assert kinds(run.add(*stuck_calls(3), HumanCommand(command="resume")), EscalationRaised) == []
    assert team_directive(run.esc) == "aborting"


def test_pause_and_resume_from_the_human() -> None:
    run = Run()
    run.add(HumanCommand(command="pause"))
    assert team_directive(run.esc) == "paused"
    run.add(RunStarted(goal="g", budget_tokens=1), ModelCallFinished(model="m", prompt_tokens=5))
    assert team_directive(run.esc) == "waiting_for_human"
    run.add(*stuck_calls(3))  # a level-1 issue is not cleared by resume
    out = run.add(HumanCommand(command="resume"))
    assert len(kinds(out, EscalationResolved)) == 1
    assert team_directive(run.esc) == "run" and run.esc.level == 1


def test_no_consensus_and_irreversible_decisions_go_to_the_human() -> None:
    run = Run()
    out = run.add(
        DecisionMade(
            decision_id="d1",
            subject="REST vs GraphQL",
            outcome="REST",
            rule="max_rounds",
            controversy="scout and builder disagree",
        ),
        DecisionMade(decision_id="d2", subject="x", outcome="y", rule="unanimous"),
        DecisionMade(
            decision_id="d3",
            subject="drop table",
            outcome="drop",
            rule="director",
            irreversible=True,
        ),
    )
    assert [(e.level, e.rule) for e in kinds(out, EscalationRaised)] == [
        (3, "no_consensus"),
        (3, "irreversible_action"),
    ]
    assert [a.alert_id for a in kinds(out, AlertRaised)] == ["A1", "A2"]
    out = run.add(HumanCommand(command="ack", target="all"))
    assert len(kinds(out, EscalationResolved)) == 2 and run.esc.level == 0


def test_fold_of_the_log_equals_the_live_state_and_refolding_is_idempotent() -> None:
    run = Run()
    run.add(RunStarted(goal="g", budget_tokens=1), ModelCallFinished(model="m", prompt_tokens=5))
    run.add(*stuck_calls(9))
    run.add(HumanCommand(command="ack", target="A1"))
    events = list(run.log.read())
    replayed = pipeline.project(events)
    assert replayed.escalation == run.esc
    assert replayed.breakers == run.state.breakers
    assert levels.project(events) == run.esc
    # The monitor's own outputs folded twice change nothing.
    own = [
        e
        for e in events
        if isinstance(e, AlertRaised)
        or (isinstance(e, EscalationRaised) and e.escalation_id in run.esc.open)
    ]
    assert len(own) == 3
    assert levels.project(own, run.esc) == run.esc


def test_a_new_run_starts_at_level_zero() -> None:
    run = Run()
    run.add(HumanCommand(command="abort"))
    run.add(RunStarted(goal="again"))
    assert team_directive(run.esc) == "run" and run.esc.level == 0
    assert run.esc.alerts  # history is kept


def test_alert_line() -> None:
    raised = EscalationRaised(escalation_id="E1", level=2, rule="conflict", reason="x", seq=5)
    assert alert_line(raised) == "ESCALATE level=2 rule=conflict run= seq=5 x"
    alert = AlertRaised(alert_id="A1", level=3, rule="memory", title="T", run="r", seq=9)
    assert alert_line(alert) == "EMERGENCY level=3 rule=memory run=r seq=9 T"
    assert alert_line(RunEnded(outcome="aborted", run="r")).startswith("ABORT run=r")  # type: ignore[union-attr]
    assert alert_line(RunEnded(outcome="completed")) is None


# Breakers


def test_phase_circuit_opens_on_a_failed_consistency_check_and_closes_on_decision() -> None:
    run = Run()
    run.add(
        AgentRegistered(agent="inspector", role="inspector"),
        PhaseEntered(phase="review", expected_s=0),
    )
    out = run.add(
        PositionTaken(review_id="r1", agent="inspector", round=1, stance="reject", critical_bugs=6)
    )
    opened = kinds(out, CircuitOpened)
    assert [(c.scope, c.target) for c in opened] == [("phase", "review")]
    assert breakers.is_halted(run.state.breakers, "review")
    assert not breakers.is_halted(run.state.breakers, "execution")
    assert not breakers.is_halted(run.state.breakers)
    out = run.add(
        DecisionMade(decision_id="d", subject="s", outcome="fix", rule="director", review_id="r1")
    )
    assert [(c.scope, c.target) for c in kinds(out, CircuitClosed)] == [("phase", "review")]
    assert not breakers.is_halted(run.state.breakers, "review")


def test_phase_circuit_closes_when_the_phase_restarts() -> None:
    run = Run()
    run.add(PhaseEntered(phase="review"))
    run.add(PositionTaken(review_id="r", agent="architect", round=1, stance="reject"))
    assert breakers.is_halted(run.state.breakers, "review")
    out = run.add(PhaseEntered(phase="review", iteration=1, reason="restart"))
    assert kinds(out, CircuitClosed) and not breakers.is_halted(run.state.breakers, "review")


def test_model_scope_circuits_are_left_to_routing() -> None:
    state = breakers.project([CircuitOpened(target="qwen", scope="model", seq=1)])
    assert state.circuits == {} and not breakers.is_halted(state)


# Pipeline


def test_trust_and_memory_through_the_pipeline() -> None:
    run = Run()
    out = run.add(
        TrustChanged(agent="scout", old=4, new=2, reason="bad"),
        HardwareSampled(ram_percent=97.0),
    )
    assert [(e.rule, e.level) for e in kinds(out, EscalationRaised)] == [
        ("trust", 2),
        ("memory", 3),
    ]
    assert [e.alert_id for e in kinds(out, AlertRaised)] == ["A1"]


def test_an_emergency_message_opens_a_level_two_meeting_and_recurrence_goes_to_the_human() -> None:
    run = Run()

    def alert(n: int) -> MessageSent:
        return MessageSent(
            msg_id=f"m{n}", sender="inspector", to="director", type="ALERT", priority="EMERGENCY"
        )

    out = run.add(alert(1))
    (raised,) = kinds(out, EscalationRaised)
    assert (raised.rule, raised.level, raised.agent) == ("emergency_message", 2, "inspector")
    assert run.esc.level == 2 and not team_may_work(run.esc)  # the others pause
    # The Director's mediation fails twice (the same agent raises again): the human is called.
    run.add(alert(2))
    out = run.add(alert(3))
    assert [e.level for e in kinds(out, EscalationRaised)] == [3]
    assert team_directive(run.esc) == "waiting_for_human"


# Settings


def test_settings_defaults_are_the_seed() -> None:
    s = escalation_settings({})
    assert (s.stuck_calls, s.same_error_repeats, s.memory_percent, s.queue_depth) == (3, 3, 90, 50)
    assert (s.call_latency_s, s.critical_bugs, s.task_attempts, s.phase_overrun_factor) == (
        300,
        5,
        5,
        2.0,
    )
    assert (s.trust_below, s.alert_file_min_level, s.recovery_attempts) == (3, 3, 2)
    assert s.budget.tokens == 0 and s.budget.cost == 0 and s.budget.wall_s == 0
    assert escalation_settings({"budget": {"tokens": 500}}).budget.tokens == 500
    assert alert_settings(None).webhooks == ()


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        (
            {"stuck_calls": "three"},
            "[escalation].stuck_calls: Expected `int`, got `str` (value 'three')",
        ),
        ({"budget": {"cost": "x"}}, "[escalation].budget.cost"),
        ({"stuck_call": 3}, "[escalation].stuck_call: Object contains unknown field"),
    ],
)
def test_bad_escalation_settings_name_the_key_and_value(table: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        escalation_settings(table)
    assert needle in str(err.value)


def test_bad_webhook_settings_never_show_the_secret() -> None:
    hook = {"name": "phone", "url": "ftp://me:hunter2@ntfy.example/topic?auth=tok123"}
    with pytest.raises(ConfigError) as err:
        alert_settings({"webhooks": [hook]})
    text = str(err.value)
    assert "[alerts].webhooks[0]" in text and "http(s)" in text
    assert "hunter2" not in text and "tok123" not in text
    with pytest.raises(ConfigError, match=r"webhooks\[0\]\.kind.*'teams'"):
        alert_settings({"webhooks": [{"name": "t", "url": "http://x", "kind": "teams"}]})


def test_redaction() -> None:
    slack = "https://hooks.slack.com/services/T0AAA/B0BBB/abcdefSECRET"
    assert redact_url(slack) == "https://hooks.slack.com/services/***/***/***"
    url = "https://bob:pw123@example.com/hook/abcd1234efgh?token=s3cret&x=1#frag"
    safe = redact_url(url)
    assert safe == "https://***@example.com/hook/***?token=***&x=***"
    assert redact_url("http://127.0.0.1:8080/json") == "http://127.0.0.1:8080/json"
    text = redact_text(f"ConnectError: cannot reach {url} (pw123, s3cret)", url)
    for secret in ("pw123", "s3cret", "abcd1234efgh", "bob"):
        assert secret not in text


def test_human_commands_take_effect_when_folded_before_the_monitor_reacts() -> None:
    run = Run()
    run.add(RunStarted(goal="g", budget_tokens=1), ModelCallFinished(model="m", prompt_tokens=5))
    assert breakers.is_halted(run.state.breakers)
    for command, directive in (("pause", "paused"), ("resume", "run"), ("abort", "aborting")):
        cmd = HumanCommand(command=command, seq=100)
        assert team_directive(levels.apply(run.esc, cmd)) == directive
    resumed = breakers.apply(run.state.breakers, HumanCommand(command="resume", seq=100))
    assert not breakers.is_halted(resumed)
    out = run.add(HumanCommand(command="resume"))
    assert [c.scope for c in kinds(out, CircuitClosed)] == ["run"]
    assert len(kinds(out, EscalationResolved)) == 1
