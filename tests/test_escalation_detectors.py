"""Detectors (issue 7): each rule at, just below and just above its threshold."""

from __future__ import annotations

from typing import Any

import pytest

from swarmlog.escalation import detectors
from swarmlog.escalation.detectors import observe_all
from swarmlog.escalation.settings import Budget, EscalationSettings
from swarmlog.events import (
    AgentRegistered,
    DetectorFired,
    Event,
    GpuSample,
    HardwareSampled,
    MessageSent,
    ModelCallFinished,
    ModelServerSampled,
    Note,
    PhaseCompleted,
    PhaseEntered,
    PositionTaken,
    ResidentModel,
    RunStarted,
    TaskClaimed,
    TaskCompleted,
    TaskFailed,
    TaskStarted,
    TaskSubmitted,
    TrustChanged,
)

T0 = 1_795_000_000.0


def stamp(events: list[Any], start: int = 1, ts: float | None = None) -> list[Event]:
    """Give hand-built events dense seqs and (unless set) one-second-apart timestamps."""
    out = []
    for i, e in enumerate(events):
        seq = start + i
        fields: dict[str, Any] = {"seq": seq, "run": "r1"}
        if not e.ts:
            fields["ts"] = (ts if ts is not None else T0) + i
        out.append(type(e)(**{**_fields(e), **fields}))
    return out


def _fields(e: Any) -> dict[str, Any]:
    return {f: getattr(e, f) for f in e.__struct_fields__}


def fired(events: list[Any], settings: EscalationSettings | None = None) -> list[DetectorFired]:
    _, out = observe_all(stamp(events), settings=settings or EscalationSettings())
    return out


def names(out: list[DetectorFired]) -> list[str]:
    return [f.detector for f in out]


def call(agent: str = "builder", **kw: Any) -> ModelCallFinished:
    return ModelCallFinished(model=kw.pop("model", "qwen"), agent=agent, **kw)


# Stuck


def test_stuck_fires_at_three_calls_without_progress_not_at_two() -> None:
    assert fired([call(), call()]) == []
    out = fired([call(), call(), call()])
    assert names(out) == ["stuck_calls"]
    f = out[0]
    assert (f.agent, f.level, f.value, f.threshold) == ("builder", 1, 3.0, 3.0)
    assert f.evidence == (1, 2, 3)  # the trigger's seq is last


def test_stuck_counts_restart_after_progress_and_after_firing() -> None:
    done = TaskCompleted(task_id="t1", agent="builder")
    assert fired([call(), call(), done, call(), call()]) == []
    # Fires at 3, then again only after 3 more (a recurrence), not on the 4th call.
    out = fired([call() for _ in range(6)])
    assert [f.evidence[-1] for f in out] == [3, 6]
    # Another agent's calls do not count toward this one.
    assert fired([call(), call("scout"), call()]) == []


def test_a_review_position_counts_as_progress() -> None:
    pos = PositionTaken(review_id="r", agent="builder", round=1, stance="approve")
    assert fired([call(), call(), pos, call()]) == []


def test_same_error_repeats_three_times() -> None:
    def fail(err: str, task: str) -> TaskFailed:
        return TaskFailed(task_id=task, agent="scout", error=err)

    assert fired([fail("boom", "a"), fail("boom", "b")]) == []
    out = fired([fail("boom", "a"), fail("boom", "b"), fail("boom", "c")])
    assert names(out) == ["same_error"]
    assert out[0].value == 3 and out[0].agent == "scout"
    # A different error in between starts a new streak.
    assert fired([fail("boom", "a"), fail("bang", "b"), fail("boom", "c")]) == []


def test_a_failure_reporting_its_own_call_error_is_one_occurrence() -> None:
    err = call("scout", outcome="error", error="503 busy", task_id="t1")
    failed = TaskFailed(task_id="t1", agent="scout", error="503 busy")
    assert "same_error" not in names(fired([err, failed, err, failed]))  # 2 occurrences
    out = fired([err, failed, err, failed, err])
    assert "same_error" in names(out)


# Resource


def test_memory_above_ninety_percent_fires_once_and_rearms() -> None:
    def hw(p: float) -> HardwareSampled:
        return HardwareSampled(host="box", ram_percent=p)

    assert fired([hw(90.0)]) == []
    out = fired([hw(90.1), hw(95.0), hw(89.0), hw(91.0)])
    assert names(out) == ["memory", "memory"]
    assert [f.evidence[-1] for f in out] == [1, 4]
    assert out[0].level == 3 and out[0].threshold == 90.0


def test_queue_depth_counts_submitted_not_started() -> None:
    def sub(i: int) -> TaskSubmitted:
        return TaskSubmitted(task_id=f"t{i}", title="x")

    assert fired([sub(i) for i in range(50)]) == []
    out = fired([sub(i) for i in range(51)])
    assert names(out) == ["queue_depth"] and out[0].value == 51
    # Starting one brings it back to 50 (clears); one more submission fires again.
    more = [sub(i) for i in range(51)] + [TaskStarted(task_id="t0", agent="b"), sub(99)]
    assert names(fired(more)) == ["queue_depth", "queue_depth"]


def test_call_slower_than_five_minutes() -> None:
    assert fired([call("a", total_ms=300_000.0)]) == []
    out = fired([call("a", total_ms=300_001.0, model="deep")])
    assert names(out) == ["call_latency"]
    assert out[0].model == "deep" and out[0].value == pytest.approx(300.001)


def test_vram_near_full() -> None:
    def gpu(used: int) -> HardwareSampled:
        return HardwareSampled(gpus=(GpuSample(index=0, mem_total=1000, mem_used=used),))

    assert fired([gpu(950)]) == []
    out = fired([gpu(951)])
    assert names(out) == ["vram"] and out[0].value == pytest.approx(95.1)


def test_model_partly_offloaded_to_cpu() -> None:
    def ps(vram: int, size: int = 100) -> ModelServerSampled:
        return ModelServerSampled(
            endpoint="http://gpu1:11434",
            resident=(ResidentModel(name="qwen3:32b", size=size, size_vram=vram),),
        )

    assert fired([ps(100)]) == []
    out = fired([ps(99), ps(50), ps(100), ps(10)])
    assert names(out) == ["offload", "offload"]  # once per episode, re-armed when it fits again
    assert out[0].model == "qwen3:32b" and out[0].value == 99 and out[0].threshold == 100
    off = EscalationSettings(offload=False)
    assert fired([ps(10)], off) == []


# Quality


def test_inspector_more_than_five_critical_bugs() -> None:
    reg = AgentRegistered(agent="insp-1", role="Inspector")

    def pos(n: int) -> PositionTaken:
        return PositionTaken(
            review_id="r1", agent="insp-1", round=1, stance="reject", critical_bugs=n
        )

    assert fired([reg, pos(5)]) == []
    out = fired([reg, pos(6)])
    assert names(out) == ["critical_bugs"] and out[0].level == 2 and out[0].value == 6
    # Someone who is not the Inspector reporting bugs is not this rule.
    assert fired([pos(9)]) == []


def test_architect_flags_a_fundamental_flaw() -> None:
    def pos(stance: str, flaw: bool = False) -> PositionTaken:
        return PositionTaken(
            review_id="r1", agent="architect", round=1, stance=stance, fundamental_flaw=flaw
        )

    assert fired([pos("approve")]) == []
    assert names(fired([pos("request_changes", flaw=True)])) == ["architect_flaw"]
    assert names(fired([pos("reject")])) == ["architect_flaw"]
    assert fired([pos("reject")], EscalationSettings(architect_flaw=False)) == []


# Emergency messages (seed §3: "Director is immediately notified; all other agents pause")


def test_an_emergency_message_for_the_director_calls_a_meeting_once() -> None:
    def msg(sender: str = "inspector", to: str = "Director", priority: str = "EMERGENCY", **kw):
        fields = {"msg_id": "m1", "type": "ALERT", "content": "MD5 password hashing\nmore"}
        return MessageSent(sender=sender, to=to, priority=priority, **{**fields, **kw})

    (f,) = fired([msg()])
    assert (f.detector, f.level, f.agent) == ("emergency_message", 2, "inspector")
    assert f.message.endswith("for the Director: MD5 password hashing")
    assert names(fired([msg(to="ALL")])) == ["emergency_message"]
    assert fired([msg(), msg()]) == fired([msg()])  # the same message twice: one meeting
    assert len(fired([msg(), msg(msg_id="m2")])) == 2
    assert fired([msg(priority="HIGH")]) == []
    assert fired([msg(to="builder")]) == []  # not for the Director
    director = AgentRegistered(agent="boss", role="Director")
    assert fired([director, msg(sender="boss", to="ALL")]) == []  # the Director answers them
    assert fired([msg()], EscalationSettings(emergency_messages=False)) == []


# Conflict


def test_conflict_is_trust_weighted() -> None:
    def pos(agent: str, stance: str, rnd: int = 1) -> PositionTaken:
        return PositionTaken(review_id="r1", agent=agent, round=rnd, stance=stance)

    def trust(agent: str, new: float) -> TrustChanged:
        return TrustChanged(agent=agent, old=7, new=new, reason="x")

    out = fired([pos("builder", "approve"), pos("refactorer", "reject")])
    assert names(out) == ["conflict"] and out[0].value == pytest.approx(0.5)
    assert out[0].evidence == (1, 2)
    # 7 vs 3: the minority holds exactly 0.3 of the weight: at the threshold, no firing.
    at = [trust("refactorer", 3.0), pos("builder", "approve"), pos("refactorer", "reject")]
    assert fired(at) == []
    above = [trust("refactorer", 3.2), pos("builder", "approve"), pos("refactorer", "reject")]
    assert names(fired(above)) == ["conflict"]
    # A later round where they agree clears it; a new disagreement fires again.
    seq = [
        pos("builder", "approve"),
        pos("refactorer", "reject"),
        pos("builder", "approve", 2),
        pos("refactorer", "approve", 2),
        pos("builder", "reject", 3),
        pos("refactorer", "approve", 3),
    ]
    assert names(fired(seq)) == ["conflict", "conflict"]


# Runaway


def test_task_attempted_more_than_five_times_then_again() -> None:
    def claim(n: int) -> TaskClaimed:
        return TaskClaimed(task_id="t1", agent="builder", lease_until=0.0, attempt=n)

    assert fired([claim(n) for n in range(1, 6)]) == []
    out = fired([claim(n) for n in range(1, 9)])
    assert [(f.detector, f.level, f.value) for f in out] == [
        ("task_attempts", 2, 6.0),
        ("task_attempts", 3, 7.0),
    ]
    assert out[0].task_id == "t1" and out[0].evidence[-1] == 6


def test_phase_running_past_twice_its_expected_duration() -> None:
    enter = PhaseEntered(phase="execution", expected_s=100.0, ts=T0)
    tick = [Note(text="tick", ts=T0 + 200.0)]
    assert fired([enter, *tick]) == []
    later = [
        enter,
        Note(text="tick", ts=T0 + 200.5),
        Note(text="tick", ts=T0 + 250.0),
        Note(text="tick", ts=T0 + 300.5),
        Note(text="tick", ts=T0 + 900.0),
    ]
    out = fired(later)
    assert [(f.detector, f.level) for f in out] == [("phase_overrun", 2), ("phase_overrun", 3)]
    assert out[0].evidence == (1, 2) and out[0].value == pytest.approx(2.005)
    done = [enter, PhaseCompleted(phase="execution", ts=T0 + 150), Note(text="tick", ts=T0 + 1000)]
    assert fired(done) == []


# Trust and budget


def test_trust_below_three() -> None:
    def t(new: float) -> TrustChanged:
        return TrustChanged(agent="scout", old=4.0, new=new, reason="bad review", evidence_seq=0)

    assert fired([t(3.0)]) == []
    out = fired([t(2.9), t(2.5), t(5.0), t(1.0)])
    assert names(out) == ["trust", "trust"] and out[0].agent == "scout"


def test_token_budget_from_run_started_without_double_counting() -> None:
    start = RunStarted(goal="g", budget_tokens=100)
    calls = [call("b", task_id="t1", prompt_tokens=30, completion_tokens=20)]
    done = TaskCompleted(task_id="t1", agent="b", tokens_in=30, tokens_out=20)
    # 50 from the call, the completion reports the same 50: 50 in all, then 50 more: at budget.
    at = [start, *calls, done, call("c", prompt_tokens=50)]
    assert "budget_tokens" not in names(fired(at))
    above = [*at, call("c", prompt_tokens=1)]
    out = fired(above)
    assert names(out).count("budget_tokens") == 1
    f = next(f for f in out if f.detector == "budget_tokens")
    assert (f.level, f.value, f.threshold) == (3, 101.0, 100.0)


def test_cost_budget_from_settings_and_completion_without_calls() -> None:
    s = EscalationSettings(budget=Budget(cost=1.0))
    at = [RunStarted(goal="g"), TaskCompleted(task_id="t", agent="b", cost=1.0)]
    assert fired(at, s) == []
    out = fired([*at, call("b", cost=0.01)], s)
    assert names(out) == ["budget_cost"]


def test_wall_clock_budget_judged_at_event_time() -> None:
    start = RunStarted(goal="g", budget_wall_s=60.0, ts=T0)
    at = [start, Note(text="tick", ts=T0 + 60.0)]
    assert fired(at) == []
    out = fired([start, Note(text="tick", ts=T0 + 60.5), Note(text="tick", ts=T0 + 70.0)])
    assert names(out) == ["budget_wall"] and out[0].evidence == (1, 2)


# Properties of the fold


def test_resuming_from_a_state_equals_replaying() -> None:
    events = stamp(
        [
            call(),
            call(),
            HardwareSampled(ram_percent=95.0),
            call(),
            TaskCompleted(task_id="t", agent="builder"),
        ]
        + [TaskClaimed(task_id="t", agent="b", lease_until=0, attempt=n) for n in range(1, 8)]
    )
    whole, fired_all = observe_all(events)
    mid, first = observe_all(events[:4])
    end, rest = observe_all(events[4:], mid)
    assert end == whole and first + rest == fired_all
    assert whole.seq == len(events)


def test_firings_already_in_the_log_are_remembered() -> None:
    events = stamp([call(), call(), call()])
    state, out = observe_all(events)
    logged = stamp(out, start=4)
    state, more = observe_all(logged, state)
    assert more == [] and state.fired_through == 3
    assert detectors.EMPTY.fired_through == 0
