"""Pure projections of the log: ``apply``/``project`` fold events into one ``SwarmState``.

``swarmlog.state.claims`` is the rule for who holds each task (claims, leases, model slots); the
dispatch board (``swarmlog.runtime.board``) folds the same rule, so both show the same holders.
"""

from __future__ import annotations

from swarmlog.state.digest import PROJECTIONS, digest, digests, state_digest
from swarmlog.state.fold import apply, latency_bucket, project, role_of
from swarmlog.state.model import (
    EMPTY,
    AgentState,
    AlertState,
    EscalationState,
    ModelStats,
    SwarmState,
    TaskState,
)
from swarmlog.state.pmap import PMap

__all__ = [
    "EMPTY",
    "PROJECTIONS",
    "AgentState",
    "AlertState",
    "EscalationState",
    "ModelStats",
    "PMap",
    "SwarmState",
    "TaskState",
    "apply",
    "digest",
    "digests",
    "latency_bucket",
    "project",
    "role_of",
    "state_digest",
]
