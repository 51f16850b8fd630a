"""The team protocol as pure rules over the log: phases, topology, reviews, convergence, trust.

Each submodule is a pure fold or rule (no I/O, no clock) except ``messaging.admit``, which appends
to a log it is given. Settings come from ``team_settings`` (the ``[team]`` table).
"""

from __future__ import annotations

from swarmlog.team.checkpoints import (
    AGENDA,
    CheckpointState,
    checkpoint_trigger,
    context_for_prompt,
    write_checkpoint,
)
from swarmlog.team.convergence import Verdict, evaluate
from swarmlog.team.deadlock import find_cycle
from swarmlog.team.messaging import admit, inbox, judge, prioritise, render_message
from swarmlog.team.phases import PhaseState, is_overdue, next_phase, phase_plan
from swarmlog.team.reviews import (
    Review,
    ReviewState,
    close_round,
    force_decision,
    independent_context,
    open_review,
    review_plan,
)
from swarmlog.team.settings import DEFAULT_SETTINGS, TeamSettings, team_settings
from swarmlog.team.topology import check_message, role_of
from swarmlog.team.trust import TrustState, below_threshold, trust_events

__all__ = [
    "AGENDA",
    "DEFAULT_SETTINGS",
    "CheckpointState",
    "PhaseState",
    "Review",
    "ReviewState",
    "TeamSettings",
    "TrustState",
    "Verdict",
    "admit",
    "below_threshold",
    "check_message",
    "checkpoint_trigger",
    "close_round",
    "context_for_prompt",
    "evaluate",
    "find_cycle",
    "force_decision",
    "inbox",
    "independent_context",
    "is_overdue",
    "judge",
    "next_phase",
    "open_review",
    "phase_plan",
    "prioritise",
    "render_message",
    "review_plan",
    "role_of",
    "team_settings",
    "trust_events",
    "write_checkpoint",
]
