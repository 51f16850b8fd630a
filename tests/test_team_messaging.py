"""Messages: the seed's Markdown shape, EMERGENCY first, addressing; folds resume; purity."""

from __future__ import annotations

import ast
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from swarmlog.events import (
    DecisionMade,
    Event,
    MessageSent,
    PhaseCompleted,
    PhaseEntered,
    PositionTaken,
    ReviewOpened,
    RoundClosed,
    TaskClaimed,
    TaskCompleted,
    TaskFailed,
    TaskSubmitted,
    TaskTimedOut,
    TrustChanged,
)
from swarmlog.team import checkpoints, phases, reviews, trust
from swarmlog.team.messaging import inbox, is_urgent, prioritise, recipients, render_message


def test_render_matches_the_seeds_example():
    m = MessageSent(
        msg_id="m1",
        sender="inspector",
        to="director",
        type="ALERT",
        priority="EMERGENCY",
        content="Critical security vulnerability detected in auth module.",
        context="This was not caught in initial implementation.",
        expected_response="Immediate decision.",
        ts=1_769_573_520.0,  # 2026-01-28T04:12:00Z
    )
    assert render_message(m) == (
        "FROM: Inspector\n"
        "TO: Director\n"
        "TYPE: ALERT\n"
        "PRIORITY: EMERGENCY\n"
        "TIMESTAMP: 2026-01-28T04:12:00Z\n"
        "\n"
        "### Content\n"
        "Critical security vulnerability detected in auth module.\n"
        "\n"
        "### Context\n"
        "This was not caught in initial implementation.\n"
        "\n"
        "### Expected Response\n"
        "Immediate decision.\n"
    )


def test_render_broadcast_reply_and_empty_sections():
    m = MessageSent(msg_id="m2", sender="builder", to="ALL", type="STATUS", reply_to="m1", ts=0.0)
    text = render_message(m)
    assert "TO: ALL\n" in text and "IN REPLY TO: m1\n" in text
    assert "TIMESTAMP: 1970-01-01T00:00:00Z" in text
    assert text.count("None.") == 3


def _m(seq: int, priority: str, to: str = "director") -> MessageSent:
    return MessageSent(
        msg_id=f"m{seq}", sender="scout", to=to, type="STATUS", priority=priority, seq=seq
    )


def test_emergency_to_the_director_jumps_the_queue():
    queue = [
        _m(1, "LOW"),
        _m(2, "HIGH", "builder"),
        _m(3, "NORMAL"),
        _m(4, "EMERGENCY"),
        _m(5, "EMERGENCY", "builder"),
    ]
    assert [m.seq for m in prioritise(queue)] == [4, 5, 2, 3, 1]
    assert is_urgent(_m(4, "EMERGENCY")) and not is_urgent(_m(5, "EMERGENCY", "builder"))
    assert is_urgent(_m(6, "EMERGENCY", "ALL"))


def test_inbox_and_recipients():
    mail = [_m(1, "NORMAL", "builder"), _m(2, "NORMAL", "ALL"), _m(3, "EMERGENCY", "director")]
    assert [m.seq for m in inbox(mail, "builder")] == [1, 2]
    assert [m.seq for m in inbox(mail, "director")] == [3, 2]
    assert [m.seq for m in inbox(mail, "scout")] == []  # its own broadcast is not its mail
    everyone = recipients(_m(2, "NORMAL", "ALL"))
    assert "scribe" in everyone and "scout" not in everyone and len(everyone) == 6
    assert recipients(_m(1, "LOW", "Builder")) == ("builder",)


# Folds resume: project(a + b) == project(b, project(a))

AGENTS = st.sampled_from(["builder", "inspector", "scout", "director"])
TASKS = st.sampled_from(["t1", "t2", "t3"])
REVIEWS = st.sampled_from(["r1", "r2"])
STANCES = st.sampled_from(["approve", "request_changes", "reject"])

EVENTS = st.one_of(
    st.builds(
        PhaseEntered, phase=st.sampled_from(["planning", "execution", "review", "iteration"])
    ),
    st.builds(
        PhaseCompleted,
        phase=st.sampled_from(["planning", "review"]),
        outcome=st.sampled_from(["done", "revise"]),
    ),
    st.builds(TaskSubmitted, task_id=TASKS, title=st.just("t"), role=AGENTS),
    st.builds(TaskClaimed, task_id=TASKS, agent=AGENTS, lease_until=st.just(1.0)),
    st.builds(TaskCompleted, task_id=TASKS, agent=AGENTS),
    st.builds(
        TaskFailed, task_id=TASKS, agent=AGENTS, error=st.sampled_from(["invalid reply", "boom"])
    ),
    st.builds(TaskTimedOut, task_id=TASKS, agent=AGENTS),
    st.builds(ReviewOpened, review_id=REVIEWS, subject=st.just("s"), task_id=TASKS),
    st.builds(
        PositionTaken,
        review_id=REVIEWS,
        agent=AGENTS,
        round=st.integers(0, 3),
        stance=STANCES,
        critical_bugs=st.integers(0, 2),
    ),
    st.builds(RoundClosed, review_id=REVIEWS, round=st.integers(0, 3)),
    st.builds(
        DecisionMade,
        decision_id=st.just("d"),
        subject=st.just("s"),
        outcome=STANCES,
        rule=st.just("stable"),
        review_id=REVIEWS,
        pending=st.booleans(),
    ),
    st.builds(
        TrustChanged, agent=AGENTS, old=st.just(7.0), new=st.floats(1, 10), reason=st.just("r")
    ),
    st.builds(
        checkpoints.write_checkpoint,
        st.just("cp"),
        st.just("phase_transition"),
        st.just("s"),
        reports=st.just({}),
    ),
)


@st.composite
def logs(draw: st.DrawFn) -> list[Event]:
    raw = draw(st.lists(EVENTS, max_size=30))
    return [replace(e, seq=n, ts=float(n)) for n, e in enumerate(raw, start=1)]


@settings(max_examples=60, deadline=None)
@given(events=logs(), cut=st.integers(0, 30))
def test_every_fold_resumes(events: list[Event], cut: int):
    a, b = events[:cut], events[cut:]
    for module in (phases, reviews, trust, checkpoints):
        whole = module.project(events)
        assert module.project(b, module.project(a)) == whole
        assert whole.seq == (events[-1].seq if events else 0)


# Purity: the rules import nothing that does I/O

PURE = [
    "settings",
    "phases",
    "topology",
    "convergence",
    "reviews",
    "trust",
    "checkpoints",
    "deadlock",
    "messaging",
]
FORBIDDEN = {
    "os",
    "io",
    "time",
    "random",
    "uuid",
    "socket",
    "subprocess",
    "pathlib",
    "httpx",
    "psutil",
    "pynvml",
    "watchfiles",
    "jinja2",
    "pydantic",
    "swarmlog.log.file",
    "swarmlog.config",
    "swarmlog.cli",
}


def test_team_modules_are_pure():
    root = Path(__file__).parent.parent / "swarmlog" / "team"
    for name in PURE:
        tree = ast.parse((root / f"{name}.py").read_text())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "open", name
        bad = {m for m in imported if m in FORBIDDEN or m.split(".")[0] in FORBIDDEN}
        assert bad == set(), (name, bad)
        allowed_roots = {
            "__future__",
            "collections",
            "typing",
            "functools",
            "math",
            "re",
            "datetime",
            "msgspec",
            "swarmlog",
        }
        assert {m.split(".")[0] for m in imported} <= allowed_roots, name
