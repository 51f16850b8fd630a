"""Checkpoints: milestone triggers, the agenda, writing, and the prompt context within budget."""

from __future__ import annotations

import pytest

from swarmlog.errors import ProtocolViolation
from swarmlog.events import (
    CheckpointWritten,
    Note,
    PhaseCompleted,
    PhaseEntered,
    PositionTaken,
    TaskCompleted,
    TaskSubmitted,
)
from swarmlog.team import checkpoints as cp
from swarmlog.team.settings import team_settings


def _state() -> cp.CheckpointState:
    return cp.project(
        [
            TaskSubmitted(task_id="build-1", title="auth", role="builder", seq=1),
            TaskSubmitted(task_id="research-1", title="jwt", role="scout", seq=2),
            TaskSubmitted(task_id="check-1", title="check", role="inspector", seq=3),
        ]
    )


@pytest.mark.parametrize(
    ("event", "trigger"),
    [
        (TaskCompleted(task_id="build-1", agent="builder-2"), "component_completed"),
        (TaskCompleted(task_id="research-1", agent="scout"), "research_finished"),
        (TaskCompleted(task_id="adhoc", agent="scout"), "research_finished"),  # role of the agent
        (TaskCompleted(task_id="adhoc", agent="builder"), "component_completed"),
        (
            TaskCompleted(task_id="check-1", agent="inspector", output={"critical_bugs": 2}),
            "significant_issues",
        ),
        (TaskCompleted(task_id="check-1", agent="inspector", output={"critical_bugs": 0}), None),
        (TaskCompleted(task_id="check-1", agent="inspector", output={"critical_bugs": True}), None),
        (
            PositionTaken(
                review_id="r", agent="inspector", round=2, stance="reject", critical_bugs=1
            ),
            "significant_issues",
        ),
        (
            PositionTaken(
                review_id="r", agent="refactorer", round=2, stance="reject", critical_bugs=4
            ),
            None,
        ),
        (PositionTaken(review_id="r", agent="inspector", round=2, stance="approve"), None),
        (PhaseCompleted(phase="execution"), "phase_transition"),
        (PhaseEntered(phase="execution"), None),
        (TaskCompleted(task_id="x", agent="refactorer"), None),
        (Note(text="hi"), None),
    ],
)
def test_milestones_trigger_checkpoints(event, trigger):
    assert cp.checkpoint_trigger(event, _state()) == trigger


def test_triggers_and_significance_are_configurable():
    settings = team_settings(
        {"checkpoints": {"triggers": ["phase_transition"], "significant_bugs": 3}}
    )
    done = TaskCompleted(task_id="build-1", agent="builder")
    assert cp.checkpoint_trigger(done, _state(), settings) is None
    assert cp.checkpoint_trigger(PhaseCompleted(phase="review"), _state(), settings)
    on = team_settings({"checkpoints": {"significant_bugs": 3}})
    finding = PositionTaken(review_id="r", agent="inspector", round=2, stance="x", critical_bugs=2)
    assert cp.checkpoint_trigger(finding, _state(), on) is None


def test_agenda_is_the_seeds():
    assert [(s.order, s.role, s.action) for s in cp.AGENDA] == [
        (1, "scribe", "read_summary"),
        (2, "*", "report"),
        (3, "director", "identify_blockers"),
        (4, "director", "decide"),
        (5, "scribe", "write_checkpoint"),
    ]
    assert cp.AGENDA[3].options == ("continue", "revise", "escalate")


def test_write_checkpoint_keeps_one_line_per_agent():
    event = cp.write_checkpoint(
        "cp-1",
        "component_completed",
        "  Auth module done.\n",
        reports={"scout": "JWT\nresearch   done", "builder": "x" * 500},
        decision="revise",
        phase="execution",
    )
    assert event.summary == "Auth module done."
    assert event.reports["scout"] == "JWT research done"
    assert len(event.reports["builder"]) == 200 and event.reports["builder"].endswith("…")
    assert list(event.reports) == ["builder", "scout"]
    with pytest.raises(ProtocolViolation, match="'maybe'"):
        cp.write_checkpoint("cp-2", "t", "s", reports={}, decision="maybe")


def _cp(n: int, seq: int, phase: str, summary: str) -> CheckpointWritten:
    return CheckpointWritten(
        checkpoint_id=f"cp-{n}", trigger="phase_transition", summary=summary, phase=phase, seq=seq
    )


def test_context_keeps_the_latest_summaries_within_budget():
    cps = [_cp(n, n * 10, "execution", f"SUMMARY-{n} " + "word " * 20) for n in range(1, 6)]
    everything = cp.context_for_prompt(cps, 10_000)
    assert [line.split()[2] for line in everything.splitlines() if line.startswith("##")] == [
        "cp-1",
        "cp-2",
        "cp-3",
        "cp-4",
        "cp-5",
    ]
    one = cp.estimate_tokens(cp.context_for_prompt(cps[-1:], 10_000) + "\n")
    two = cp.context_for_prompt(cps, one * 2 + 1)
    assert "SUMMARY-5" in two and "SUMMARY-4" in two and "SUMMARY-3" not in two
    assert two.index("SUMMARY-4") < two.index("SUMMARY-5")  # oldest first
    assert cp.estimate_tokens(two) <= one * 2 + 1


def test_context_excludes_archived_phases_but_carries_the_latest():
    cps = [
        _cp(1, 5, "planning", "PLAN"),
        _cp(2, 15, "execution", "EXEC-1"),
        _cp(3, 25, "execution", "EXEC-2"),
    ]
    text = cp.context_for_prompt(cps, 10_000, archived_before=20)
    assert "EXEC-2" in text and "PLAN" not in text and "EXEC-1" not in text
    # the latest is carried even when it predates the active phase
    text = cp.context_for_prompt(cps, 10_000, archived_before=30)
    assert "EXEC-2" in text and "EXEC-1" not in text


def test_context_cuts_the_latest_to_fit_and_handles_nothing():
    big = [_cp(1, 1, "review", "long " * 1_000)]
    text = cp.context_for_prompt(big, 50)
    assert text.startswith("## Checkpoint cp-1") and cp.estimate_tokens(text) <= 50
    assert cp.context_for_prompt([], 100) == ""
    assert cp.context_for_prompt(big, 0) == ""


@pytest.mark.timeout(10)
@pytest.mark.parametrize("budget", [1, 2, 3, 4, 5, 6])
def test_context_within_a_tiny_budget_returns(budget):
    # A cut keeps 90 % and adds a mark: at about 20 characters that no longer shrinks the text,
    # which used to loop forever.
    text = cp.context_for_prompt([_cp(1, 1, "review", "long " * 50)], budget)
    assert cp.estimate_tokens(text) <= budget


def test_state_tracks_checkpoints_and_the_phase_boundary():
    state = cp.project(
        [
            PhaseEntered(phase="planning", seq=1),
            _cp(1, 2, "planning", "p"),
            PhaseEntered(phase="execution", seq=3),
        ]
    )
    assert (
        state.phase_seq == 3 and state.latest is not None and state.latest.checkpoint_id == "cp-1"
    )
    assert state.seq == 3


def test_fit_blocks_takes_the_leading_blocks_that_fit_and_reads_no_further():
    read: list[str] = []

    def blocks():
        for b in ("aaaa", "bb", "cccccc", "d"):
            read.append(b)
            yield b

    # 4 + 2 = 6 fits a budget of 6 exactly; "cccccc" does not, and "d" is never read even though
    # it alone would fit: the fill stops at the first block that does not.
    assert cp.fit_blocks(blocks(), 6, len) == ["aaaa", "bb"]
    assert read == ["aaaa", "bb", "cccccc"]
    assert cp.fit_blocks(["aaaa"], 3, len) == []
    assert cp.fit_blocks([], 10, len) == []
    assert cp.fit_blocks(["x", "y"], 4, lambda b: len(b) + 1) == ["x", "y"]


def test_context_reads_only_the_checkpoints_it_keeps_and_the_first_left_out():
    cps = [_cp(n, n * 10, "execution", f"SUMMARY-{n} " + "word " * 20) for n in range(1, 6)]
    counted: list[str] = []

    def count(text: str) -> int:
        counted.append(text.split()[2])
        return cp.estimate_tokens(text)

    one = cp.estimate_tokens(cp.context_for_prompt(cps[-1:], 10_000))
    text = cp.context_for_prompt(cps, one * 2, count_tokens=count)
    assert counted == ["cp-5", "cp-4", "cp-3"]
    assert text.index("SUMMARY-4") < text.index("SUMMARY-5") and "SUMMARY-3" not in text
