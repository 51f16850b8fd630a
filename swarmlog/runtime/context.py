"""What every runtime process needs to know about the run, folded from the log.

The config in force, the goal, the phase and Scribe's latest summaries come from events, so a
restarted process knows exactly what its predecessor knew. (Whether the team may work, the human's
pause and abort included, is the escalation fold's ``team_directive``.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from msgspec.structs import replace

from swarmlog.events import (
    CheckpointWritten,
    ConfigLoaded,
    Event,
    PhaseEntered,
    RunEnded,
    RunStarted,
)

__all__ = ["EMPTY_CONTEXT", "RunContext", "apply_context", "project_context"]


class RunContext(msgspec.Struct, frozen=True, kw_only=True):
    """The run-wide facts an agent or the scheduler acts on."""

    seq: int = 0
    run: str = ""
    run_seq: int = 0  # the run's first run_started: what came before belongs to earlier runs
    goal: str = ""
    scenario: str = ""  # the simulated scenario the run was started on, if any
    ended: bool = False
    outcome: str = ""
    config: dict[str, Any] = msgspec.field(default_factory=dict)
    phase: str = ""
    iteration: int = 0
    phase_seq: int = 0  # the current phase's phase_entered: older checkpoints are archived
    checkpoints: tuple[CheckpointWritten, ...] = ()  # Scribe's latest, oldest first


EMPTY_CONTEXT = RunContext()


def apply_context(ctx: RunContext, event: Event) -> RunContext:
    """Fold one event into the run context."""
    match event:
        case RunStarted():
            if event.continues(ctx.run):
                return replace(ctx, seq=event.seq, ended=False, outcome="")
            return RunContext(
                seq=event.seq,
                run=event.run,
                run_seq=event.seq,
                goal=event.goal,
                scenario=event.scenario,
                config=ctx.config,
            )
        case ConfigLoaded():
            return replace(ctx, seq=event.seq, config=event.config)
        case PhaseEntered():
            return replace(
                ctx,
                seq=event.seq,
                phase=event.phase,
                iteration=event.iteration,
                phase_seq=event.seq,
            )
        case CheckpointWritten():
            return replace(ctx, seq=event.seq, checkpoints=(*ctx.checkpoints, event)[-8:])
        case RunEnded():
            return replace(ctx, seq=event.seq, ended=True, outcome=event.outcome)
    return replace(ctx, seq=event.seq)


def project_context(events: Iterable[Event], ctx: RunContext = EMPTY_CONTEXT) -> RunContext:
    """Fold many events."""
    for event in events:
        ctx = apply_context(ctx, event)
    return ctx
