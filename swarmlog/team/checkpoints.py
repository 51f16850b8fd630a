"""Checkpoints (guide §3, §10): triggered by milestones, summarised by the Scribe, fed to prompts.

A checkpoint is due when a Builder completes a component, the Scout finishes research, the
Inspector finds significant issues, or a phase completes. The agenda is data the runtime follows;
the Scribe's ``checkpoint_written`` summary then replaces transcripts as the context of later
prompts, within each agent's token budget, with completed phases archived out of it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import msgspec
from msgspec.structs import replace

from swarmlog.errors import ProtocolViolation
from swarmlog.events import (
    CheckpointWritten,
    Event,
    PhaseCompleted,
    PhaseEntered,
    PositionTaken,
    TaskCompleted,
    TaskSubmitted,
)
from swarmlog.team.settings import DEFAULT_SETTINGS, TeamSettings
from swarmlog.team.topology import role_of

__all__ = [
    "AGENDA",
    "DECISIONS",
    "EMPTY",
    "AgendaStep",
    "CheckpointState",
    "apply",
    "checkpoint_trigger",
    "context_for_prompt",
    "estimate_tokens",
    "fit_blocks",
    "one_line",
    "project",
    "write_checkpoint",
]

DECISIONS: tuple[str, ...] = ("continue", "revise", "escalate")
_REPORT_CHARS = 200


class AgendaStep(msgspec.Struct, frozen=True, kw_only=True):
    """One item of the checkpoint agenda; ``role`` ``*`` means every agent in turn."""

    order: int
    role: str
    action: str
    description: str
    options: tuple[str, ...] = ()


AGENDA: tuple[AgendaStep, ...] = (
    AgendaStep(order=1, role="scribe", action="read_summary", description="read the state summary"),
    AgendaStep(order=2, role="*", action="report", description="each agent reports one sentence"),
    AgendaStep(
        order=3, role="director", action="identify_blockers", description="name blockers/conflicts"
    ),
    AgendaStep(
        order=4,
        role="director",
        action="decide",
        description="decide how the team goes on",
        options=DECISIONS,
    ),
    AgendaStep(
        order=5, role="scribe", action="write_checkpoint", description="append checkpoint_written"
    ),
)


# The fold


class CheckpointState(msgspec.Struct, frozen=True, kw_only=True):
    """What the checkpoint rules need: task roles, checkpoints so far, where the phase began."""

    seq: int = 0
    task_roles: dict[str, str] = msgspec.field(default_factory=dict)
    checkpoints: tuple[CheckpointWritten, ...] = ()
    phase_seq: int = 0  # seq of the latest phase_entered: earlier checkpoints are archived

    @property
    def latest(self) -> CheckpointWritten | None:
        return self.checkpoints[-1] if self.checkpoints else None


EMPTY = CheckpointState()


def apply(state: CheckpointState, event: Event) -> CheckpointState:
    """Fold one event into the checkpoint state."""
    match event:
        case TaskSubmitted(task_id=task, role=role) if role:
            return replace(state, seq=event.seq, task_roles={**state.task_roles, task: role})
        case CheckpointWritten():
            return replace(state, seq=event.seq, checkpoints=(*state.checkpoints, event))
        case PhaseEntered():
            return replace(state, seq=event.seq, phase_seq=event.seq)
    return replace(state, seq=event.seq)


def project(events: Iterable[Event], state: CheckpointState = EMPTY) -> CheckpointState:
    """Fold events into ``state``; resuming from a state equals replaying from the start."""
    return functools.reduce(apply, events, state)


# Triggers


def _bugs_in(output: Mapping[str, object]) -> int:
    value = output.get("critical_bugs", 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def checkpoint_trigger(
    event: Event, state: CheckpointState, settings: TeamSettings = DEFAULT_SETTINGS
) -> str | None:
    """Return the milestone ``event`` marks (a ``CHECKPOINT_TRIGGERS`` name), or None.

    A task's role is the one it was submitted for, else the role of the agent that did it.
    """
    trigger: str | None = None
    significant = settings.checkpoints.significant_bugs
    match event:
        case TaskCompleted(task_id=task, agent=agent, output=output):
            role = state.task_roles.get(task) or role_of(agent, settings.topology)
            if role == "builder":
                trigger = "component_completed"
            elif role == "scout":
                trigger = "research_finished"
            elif role == "inspector" and _bugs_in(output) >= significant:
                trigger = "significant_issues"
        case PositionTaken(agent=agent, critical_bugs=bugs):
            if role_of(agent, settings.topology) == "inspector" and bugs >= significant:
                trigger = "significant_issues"
        case PhaseCompleted():
            trigger = "phase_transition"
    return trigger if trigger in settings.checkpoints.triggers else None


# Writing


def one_line(text: str, limit: int = _REPORT_CHARS) -> str:
    """Collapse whitespace and cut to ``limit`` characters (the guide: one sentence)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def write_checkpoint(
    checkpoint_id: str,
    trigger: str,
    summary: str,
    *,
    reports: Mapping[str, str],
    decision: str = "continue",
    phase: str = "",
    next_trigger: str = "",
    state_digest: str = "",
) -> CheckpointWritten:
    """Return the Scribe's ``checkpoint_written`` with one line per agent report.

    Raises:
        ProtocolViolation: ``decision`` is not continue, revise or escalate.
    """
    if decision not in DECISIONS:
        raise ProtocolViolation(
            f"checkpoint decision {decision!r} is not one of {', '.join(DECISIONS)}; "
            f"the director must pick one"
        )
    return CheckpointWritten(
        checkpoint_id=checkpoint_id,
        trigger=trigger,
        summary=summary.strip(),
        phase=phase,
        reports={agent: one_line(text) for agent, text in sorted(reports.items())},
        decision=decision,
        next_trigger=next_trigger,
        state_digest=state_digest,
    )


# Prompt context


def estimate_tokens(text: str) -> int:
    """Return a deterministic token estimate: one token per four characters, rounded up."""
    return math.ceil(len(text) / 4)


def fit_blocks(blocks: Iterable[str], budget: int, cost: Callable[[str], int]) -> list[str]:
    """The leading ``blocks`` whose ``cost``s add up to at most ``budget``: taken in order, up to
    the first that does not fit (the rest are not read)."""
    kept: list[str] = []
    used = 0
    for block in blocks:
        spent = cost(block)
        if used + spent > budget:
            break
        kept.append(block)
        used += spent
    return kept


def _block(cp: CheckpointWritten) -> str:
    where = ", ".join(x for x in (cp.phase, cp.trigger) if x)
    return f"## Checkpoint {cp.checkpoint_id} ({where}): {cp.decision}\n{cp.summary}\n"


def _fit(text: str, budget: int, count: Callable[[str], int]) -> str:
    """Cut ``text`` by a tenth at a time, marking the cut, until it fits; "" when it cannot."""
    while text and count(text) > budget:
        cut = text[: int(len(text) * 0.9)].rstrip() + "…\n"
        if len(cut) >= len(text) or len(cut) <= 2:
            return ""  # too short to shrink further (a budget of a few tokens)
        text = cut
    return text


def context_for_prompt(
    checkpoints: Sequence[CheckpointWritten],
    budget_tokens: int,
    *,
    archived_before: int = 0,
    count_tokens: Callable[[str], int] = estimate_tokens,
) -> str:
    """Return the latest checkpoint summaries that fit in ``budget_tokens``, oldest first.

    Only summaries enter the context, never transcripts or reports. Checkpoints with a seq at or
    below ``archived_before`` (the seq of the active phase's ``phase_entered``) belong to
    completed phases and are left out, except the very latest checkpoint, which carries the
    completed phases forward. When even that one does not fit, it is cut to the budget.
    """
    if budget_tokens <= 0 or not checkpoints:
        return ""
    last = len(checkpoints) - 1
    newest_first = (
        _block(checkpoints[i])
        for i in range(last, -1, -1)
        if i == last or checkpoints[i].seq > archived_before
    )
    chosen = fit_blocks(newest_first, budget_tokens, count_tokens)
    if not chosen:  # not even the latest fits: cut it to the budget
        chosen = [_fit(_block(checkpoints[last]), budget_tokens, count_tokens)]
    return "\n".join(reversed([c for c in chosen if c]))
