"""Pure folds: prefix property, digests, and what each projection records."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st
from test_render_scenario import scripted

from swarmlog.events import (
    AlertRaised,
    EscalationRaised,
    EscalationResolved,
    EventBase,
    Heartbeat,
    HumanCommand,
    ModelCallFinished,
    TaskClaimed,
    TaskCompleted,
    TaskSubmitted,
)
from swarmlog.state import EMPTY, PMap, apply, digests, project, role_of, state_digest
from swarmlog.state.stats import percentile_ms


def _stamp(events: list[EventBase]) -> list[EventBase]:
    return [msgspec.structs.replace(e, seq=i + 1, ts=1000.0 + i) for i, e in enumerate(events)]


_ids = st.sampled_from(["T1", "T2", "T3", "x|y"])
_agents = st.sampled_from(["builder", "builder-2", "scout", "director"])
_event = st.one_of(
    st.builds(TaskSubmitted, task_id=_ids, title=st.text(max_size=5)),
    st.builds(TaskClaimed, task_id=_ids, agent=_agents, lease_until=st.floats(0, 1e4)),
    st.builds(TaskCompleted, task_id=_ids, agent=_agents, tokens_in=st.integers(0, 99)),
    st.builds(Heartbeat, agent=_agents, task_id=_ids, lease_until=st.floats(0, 1e4)),
    st.builds(
        ModelCallFinished,
        model=st.sampled_from(["a", "b"]),
        total_ms=st.floats(0, 1e6),
        outcome=st.sampled_from(["ok", "timeout", "weird"]),
    ),
    st.builds(EscalationRaised, escalation_id=_ids, level=st.integers(0, 4), rule=st.just("r")),
    st.builds(EscalationResolved, escalation_id=_ids),
    st.builds(AlertRaised, alert_id=_ids, level=st.integers(1, 4), rule=st.just("r"), title=_ids),
    st.builds(HumanCommand, command=st.sampled_from(["ack", "pause", "resume"]), target=_ids),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_event, max_size=40), st.integers(0, 40))
def test_folding_a_prefix_then_the_rest_equals_folding_everything(events, cut):
    events = _stamp(events)
    whole = project(events)
    resumed = project(events[cut:], project(events[:cut]))
    assert resumed == whole
    assert state_digest(resumed) == state_digest(whole)
    assert whole.seq == (events[-1].seq if events else 0)


def test_scripted_night_projects_the_team_board_and_alerts():
    s = project(scripted())
    assert s.team.run == "night-0128" and s.team.outcome == "completed"
    assert s.board.counts == {"done": 2}
    t2 = s.board.tasks.get("T2")
    assert t2 is not None and t2.attempts == 2 and t2.tokens_in == 4000
    assert s.board.claims.held == {}
    assert s.team.agents["builder"].trust == 6
    assert [c.agent for c in s.trust.changes] == ["builder", "inspector"]
    assert s.alerts.level == 0 and s.alerts.max_level == 3 and s.alerts.emergency_since == 0
    assert s.alerts.alerts["A1"].acked and s.alerts.alerts["A1"].delivered == ("file",)
    assert s.models.models["qwen3:32b"].calls == 3 and s.models.models["qwen3:32b"].timeout == 1
    assert [p.phase for p in s.phases.spans] == ["planning", "execution"]
    assert all(p.completed_ts for p in s.phases.spans)
    assert [sp.task_id for sp in s.timeline.spans] == ["T1", "T2", "T2"]
    assert "D1" in s.team.pending


def test_emergency_opens_on_level_two_and_closes_when_resolved_and_acked():
    open_ = project(scripted(resolve=False))
    assert open_.alerts.emergency_since > 0 and open_.alerts.level == 3
    assert any(k.startswith("escalation:") for k in open_.team.blockers)
    events = _stamp(
        [
            EscalationRaised(escalation_id="E", level=2, rule="r"),
            AlertRaised(alert_id="A", level=3, rule="r", title="t"),
            EscalationResolved(escalation_id="E"),
        ]
    )
    s = project(events)
    assert s.alerts.emergency_since == 1  # the unacked level-3 alert keeps it open
    s = apply(s, HumanCommand(seq=4, ts=2000.0, command="ack", target="A", actor="human"))
    assert s.alerts.emergency_since == 0 and s.alerts.alerts["A"].acked_by == "human"


def test_duplicate_completion_is_not_counted_twice():
    done = TaskCompleted(task_id="T", agent="a", tokens_in=10, cost=1.0)
    s = project(_stamp([TaskSubmitted(task_id="T", title="t"), done, done]))
    assert s.board.tokens_in == 10 and s.board.cost == 1.0 and s.board.counts == {"done": 1}


def test_heartbeat_without_a_lease_only_advances_seq():
    s = project(_stamp([TaskSubmitted(task_id="T", title="t")]))
    after = apply(s, Heartbeat(seq=2, ts=5.0, agent="scout"))
    assert after.seq == 2 and after.board is s.board and after.team is s.team


def test_pmap_is_persistent_and_iterates_in_key_order():
    a: PMap[int] = PMap()
    b = a.set("k2", 2).set("k1", 1)
    c = b.delete("k2")
    assert len(a) == 0 and len(b) == 2 and len(c) == 1
    assert list(b.items()) == [("k1", 1), ("k2", 2)] and b.get("k2") == 2 and c.get("k2") is None
    assert c.delete("absent") is c


def test_percentiles_come_from_the_histogram_and_never_exceed_the_max():
    calls = [ModelCallFinished(model="m", total_ms=ms) for ms in (100.0, 100.0, 100.0, 5000.0)]
    m = project(_stamp(calls)).models.models["m"]
    assert 100 <= percentile_ms(m, 0.5) < 120
    assert percentile_ms(m, 0.99) == 5000.0


def test_role_of_strips_a_numeric_suffix():
    assert role_of("builder-2") == "builder" and role_of("scout") == "scout"
    assert role_of("x-ray") == "x-ray"


def test_digest_is_stable_across_processes():
    here = digests(project(scripted()))
    code = (
        "import sys; sys.path.insert(0, 'tests');"
        "from test_render_scenario import scripted;"
        "from swarmlog.state import project, digests;"
        "import json; print(json.dumps(digests(project(scripted()))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert msgspec.json.decode(out.stdout) == here
    assert here["state"] != digests(EMPTY)["state"]


def test_a_rival_claim_on_a_live_lease_does_not_change_the_holder():
    from swarmlog.events import TaskClaimed, TaskSubmitted
    from swarmlog.state import project

    events = [
        TaskSubmitted(task_id="t", title="T", seq=1, ts=10.0),
        TaskClaimed(task_id="t", agent="builder", lease_until=100.0, seq=2, ts=11.0),
        TaskClaimed(task_id="t", agent="builder-2", lease_until=100.0, seq=3, ts=12.0),
    ]
    assert project(events).board.tasks.get("t").agent == "builder"
    late = TaskClaimed(task_id="t", agent="builder-2", lease_until=300.0, seq=4, ts=200.0)
    assert project([*events, late]).board.tasks.get("t").agent == "builder-2"  # lease ran out
