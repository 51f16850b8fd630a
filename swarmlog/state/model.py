"""The shapes of the projections: frozen Structs folded from the log by ``swarmlog.state.fold``.

Each sub-projection carries ``seq``, the last event that changed it; ``SwarmState.seq`` is the
last event applied to all of them. Times are event times (UTC seconds), never the wall clock.
"""

from __future__ import annotations

import msgspec

from swarmlog.state.claims import EMPTY_CLAIMS, Claim, Claims
from swarmlog.state.escalations import EMPTY_ESCALATIONS, Escalations
from swarmlog.state.pmap import PMap

__all__ = [
    "EMPTY",
    "LATENCY_BUCKETS",
    "AgentState",
    "AlertState",
    "Alerts",
    "Board",
    "CheckpointInfo",
    "DecisionRecord",
    "Decisions",
    "EscalationState",
    "MessageInfo",
    "Messages",
    "ModelStats",
    "Models",
    "NoteInfo",
    "PendingDecision",
    "PhaseSpan",
    "Phases",
    "ReviewState",
    "Span",
    "SwarmState",
    "TaskState",
    "Team",
    "Timeline",
    "TrustChange",
    "TrustHistory",
]

# Latency histogram: bucket i holds calls with 2**(i/4) <= ms < 2**((i+1)/4); bucket 0 also holds
# everything under 1 ms and the last bucket everything past ~17 minutes.
LATENCY_BUCKETS = 80


class AgentState(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One agent as the team sees it."""

    agent: str
    role: str = ""
    model: str = ""
    status: str = "registered"
    task_id: str = ""
    detail: str = ""
    trust: float = 7.0
    since: float = 0.0  # event time of the last status change


class CheckpointInfo(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """The Scribe's latest checkpoint."""

    checkpoint_id: str
    seq: int
    ts: float
    trigger: str = ""
    summary: str = ""
    phase: str = ""
    decision: str = ""
    state_digest: str = ""


class PendingDecision(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """A decision the team still awaits."""

    decision_id: str
    subject: str
    seq: int
    rationale: str = ""


class Team(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """The run, its phase, the agents, pending decisions, blockers and the next checkpoint."""

    seq: int = 0
    run: str = ""
    goal: str = ""
    scenario: str = ""
    started_ts: float = 0.0
    ended_ts: float = 0.0
    outcome: str = ""
    end_reason: str = ""
    budget_tokens: int = 0
    budget_cost: float = 0.0
    phase: str = ""
    iteration: int = 0
    phase_ts: float = 0.0
    last_checkpoint: CheckpointInfo | None = None
    next_trigger: str = ""
    agents: dict[str, AgentState] = {}
    pending: dict[str, PendingDecision] = {}
    blockers: dict[str, str] = {}  # key (circuit:…, escalation:…, human:pause) -> text
    paused: bool = False
    config_digest: str = ""


class TaskState(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One task on the board: submitted, routed, claimed, running, done, failed or cancelled.

    ``claim`` (status, holder, model, attempt, batch) is exactly what the dispatcher's rule
    (``swarmlog.state.claims``) decided; the lease of a held task is in ``Board.claims``.
    """

    task_id: str
    seq: int
    title: str = ""
    task_kind: str = ""
    role: str = ""
    phase: str = ""
    deps: tuple[str, ...] = ()
    priority: int = 0
    parent: str = ""
    claim: Claim = Claim()
    submitted_ts: float = 0.0
    routed_ts: float = 0.0
    claimed_ts: float = 0.0
    started_ts: float = 0.0
    finished_ts: float = 0.0
    summary: str = ""
    error: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0

    @property
    def state(self) -> str:
        """submitted, routed, claimed, running, done, failed or cancelled."""
        return self.claim.status

    @property
    def agent(self) -> str:
        """The holder (kept once done; empty after a failed or timed-out attempt)."""
        return self.claim.agent

    @property
    def model(self) -> str:
        return self.claim.model

    @property
    def batch_id(self) -> str:
        return self.claim.batch_id

    @property
    def attempts(self) -> int:
        """The attempt number of the last winning claim."""
        return self.claim.attempt

    @property
    def max_attempts(self) -> int:
        return self.claim.max_attempts


class Board(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """The current run's task board: every task, who holds what, counts per state, totals.

    ``claims`` is the dispatcher's view of the run (slots, and the holder and lease of every
    claimed or running task), folded by the same rule as the dispatch board's.
    """

    seq: int = 0
    tasks: PMap[TaskState] = PMap()
    claims: Claims = EMPTY_CLAIMS
    counts: dict[str, int] = {}  # state -> number of tasks
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0


class TrustChange(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One change of an agent's trust."""

    seq: int
    ts: float
    agent: str
    old: float
    new: float
    reason: str = ""
    evidence_seq: int = 0


class TrustHistory(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Every trust change, in order."""

    seq: int = 0
    changes: tuple[TrustChange, ...] = ()


class DecisionRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """A decision with the rule that made it and who dissented."""

    seq: int
    ts: float
    decision_id: str
    subject: str
    outcome: str
    rule: str
    by: str = ""
    rationale: str = ""
    dissent: tuple[str, ...] = ()
    controversy: str = ""
    review_id: str = ""
    pending: bool = False
    run: str = ""  # the night (run id) it was made in: the decision log spans every night


class ReviewState(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """A review (debate): its rounds and the rule that closed it."""

    review_id: str
    subject: str
    seq: int
    opened_ts: float = 0.0
    task_id: str = ""
    participants: tuple[str, ...] = ()
    rounds: int = 0
    positions: int = 0
    converged: bool = False
    rule: str = ""


class Decisions(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """The decision log and the reviews that led to it."""

    seq: int = 0
    records: tuple[DecisionRecord, ...] = ()
    reviews: dict[str, ReviewState] = {}


class MessageInfo(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """A recent message (content cut to a bounded length)."""

    seq: int
    ts: float
    sender: str
    to: str
    type: str
    priority: str = "NORMAL"
    content: str = ""
    rejected: str = ""  # the topology rule that refused it, if any


class Messages(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Message counts and the most recent messages (bounded)."""

    seq: int = 0
    sent: int = 0
    rejected: int = 0
    by_type: dict[str, int] = {}
    by_priority: dict[str, int] = {}
    recent: tuple[MessageInfo, ...] = ()


class AlertState(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """An alert, its deliveries and whether a human acknowledged it."""

    alert_id: str
    seq: int
    ts: float
    level: int
    rule: str
    title: str
    summary: str = ""
    evidence: tuple[int, ...] = ()
    actions: tuple[str, ...] = ()
    advice: tuple[str, ...] = ()
    escalation_id: str = ""
    acked: bool = False
    acked_by: str = ""
    acked_seq: int = 0
    delivered: tuple[str, ...] = ()  # channels that succeeded
    failed_deliveries: int = 0


class EscalationState(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """An escalation, open or resolved."""

    escalation_id: str
    seq: int
    ts: float
    level: int
    rule: str
    reason: str = ""
    agent: str = ""
    task_id: str = ""
    evidence: tuple[int, ...] = ()
    resolved_seq: int = 0
    resolution: str = ""
    resolved_by: str = ""


class Alerts(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Alerts, escalations and detector firings.

    ``escalations`` is the one escalation rule's state (``swarmlog.state.escalations``), the very
    fold the monitor obeys; which escalations are open or closed, each alert's acknowledgement, the
    level and whether an emergency is open are derived from it, never decided here. An emergency
    is open while an escalation of level >= 2 is unresolved or an alert of level >= 3 is
    unacknowledged (``swarmlog ack ID`` acknowledges it).
    """

    seq: int = 0
    alerts: dict[str, AlertState] = {}
    open: dict[str, EscalationState] = {}  # unresolved escalations
    closed: tuple[EscalationState, ...] = ()  # resolved ones, in the order they were resolved
    resolved: int = 0
    level: int = 0  # 4 once the run is aborted, else the highest among unresolved escalations
    max_level: int = 0  # highest level ever reached
    detectors: dict[str, int] = {}  # detector -> times fired
    emergency_since: int = 0  # seq at which the current emergency opened (0: none)
    escalations: Escalations = EMPTY_ESCALATIONS


class ModelStats(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Calls to one model: outcomes, latency histogram, tokens and cost."""

    model: str
    seq: int = 0
    calls: int = 0
    ok: int = 0
    error: int = 0
    timeout: int = 0
    invalid: int = 0
    rejected: int = 0
    other: int = 0
    total_ms: float = 0.0
    ttft_ms: float = 0.0
    max_ms: float = 0.0
    latency: tuple[int, ...] = ()  # LATENCY_BUCKETS counts; empty until the first call
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ok_ms: float = 0.0  # total time of ok calls (for tokens/s)
    ok_completion_tokens: int = 0
    cost: float = 0.0


class Models(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Model-call statistics per model."""

    seq: int = 0
    models: dict[str, ModelStats] = {}


class PhaseSpan(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One pass through a phase."""

    phase: str
    iteration: int
    seq: int
    entered_ts: float
    completed_ts: float = 0.0
    outcome: str = ""
    expected_s: float = 0.0


class Phases(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Every phase entered, in order."""

    seq: int = 0
    spans: tuple[PhaseSpan, ...] = ()


class Span(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """An agent working on a task from ``start`` to ``end`` (event times)."""

    agent: str
    task_id: str
    seq: int
    start: float
    end: float
    outcome: str
    title: str = ""


class Timeline(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Who did what when: the most recent finished attempts (bounded), for the Gantt chart."""

    seq: int = 0
    spans: tuple[Span, ...] = ()
    dropped: int = 0  # older spans no longer kept


class NoteInfo(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """An operator's or agent's note."""

    seq: int
    ts: float
    actor: str
    text: str


class SwarmState(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Every projection, folded to ``seq`` (the last event applied; ``ts`` is its time)."""

    seq: int = 0
    ts: float = 0.0
    team: Team = Team()
    board: Board = Board()
    trust: TrustHistory = TrustHistory()
    decisions: Decisions = Decisions()
    messages: Messages = Messages()
    alerts: Alerts = Alerts()
    models: Models = Models()
    phases: Phases = Phases()
    timeline: Timeline = Timeline()
    notes: tuple[NoteInfo, ...] = ()


EMPTY = SwarmState()
