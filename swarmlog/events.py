"""Every event kind swarmlog records, and the one encoder and decoder for them.

The log is the only source of truth; these types are its vocabulary. Tags (the ``kind`` field)
and field names are a public contract: scripts and committed run histories depend on them. Evolve
an event only by adding fields with defaults; never rename or remove a tag or a field, never change
a type.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "ALL_KINDS",
    "DECODER",
    "ENCODER",
    "EVENT_TYPES",
    "AgentRegistered",
    "AgentStatusChanged",
    "AlertDelivered",
    "AlertRaised",
    "CandidateScore",
    "CheckpointWritten",
    "CircuitClosed",
    "CircuitOpened",
    "ConfigLoaded",
    "DecisionMade",
    "DetectorFired",
    "EscalationRaised",
    "EscalationResolved",
    "Event",
    "EventBase",
    "GpuProcess",
    "GpuSample",
    "HardwareSampled",
    "Heartbeat",
    "HumanCommand",
    "MessageRejected",
    "MessageSent",
    "ModelCallFinished",
    "ModelServerSampled",
    "Note",
    "PhaseCompleted",
    "PhaseEntered",
    "PositionTaken",
    "ResidentModel",
    "ReviewOpened",
    "RoundClosed",
    "RunEnded",
    "RunStarted",
    "TaskBatched",
    "TaskCancelled",
    "TaskClaimed",
    "TaskCompleted",
    "TaskFailed",
    "TaskRouted",
    "TaskStarted",
    "TaskSubmitted",
    "TaskTimedOut",
    "TrustChanged",
    "decode",
    "decode_many",
    "encode",
    "kind_of",
]


class EventBase(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", omit_defaults=True):
    """The envelope every event carries.

    ``seq`` and ``ts`` are stamped by ``EventLog.append``: ``seq`` is dense and global (1, 2, 3 …),
    ``ts`` is UTC seconds since the epoch. ``run`` names the run, ``actor`` who appended (a role,
    ``human``, ``scheduler``, …), and ``key`` is an optional idempotency key: the log keeps the
    first event with a given key and answers later appends of that key with it.
    """

    seq: int = 0
    ts: float = 0.0
    run: str = ""
    actor: str = ""
    key: str | None = None


# Nested records (not events themselves)


class CandidateScore(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One model profile's evaluation in a routing decision."""

    model: str
    eligible: bool = True
    reason: str = ""  # why it was filtered out, or what decided its score
    expected_s: float = 0.0  # expected completion time in event-time seconds
    score: float = 0.0  # lower is better
    in_flight: int = 0
    slots: int = 1


class GpuProcess(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A process holding GPU memory."""

    pid: int
    used_bytes: int | None = None


class GpuSample(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One GPU's reading; every measurement but identity and memory is optional."""

    index: int
    name: str = ""
    uuid: str = ""
    mem_total: int = 0
    mem_free: int = 0
    mem_used: int = 0
    util_gpu: int | None = None
    util_mem: int | None = None
    temperature_c: int | None = None
    power_mw: int | None = None
    power_limit_mw: int | None = None
    mig_enabled: bool | None = None
    processes: tuple[GpuProcess, ...] = ()
    errors: tuple[str, ...] = ()  # queries the board did not support, e.g. fan speed


class ResidentModel(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A model loaded on a server (Ollama ``/api/ps``)."""

    name: str
    size: int = 0
    size_vram: int = 0
    expires_at: str = ""
    context_length: int = 0


# Run lifecycle


class RunStarted(EventBase, frozen=True, tag="run_started"):
    """A run began (or was resumed) with this goal."""

    goal: str
    scenario: str = ""
    resumed: bool = False
    host: str = ""
    pid: int = 0
    budget_tokens: int = 0
    budget_cost: float = 0.0
    budget_wall_s: float = 0.0

    def continues(self, run: str) -> bool:
        """Whether this run_started goes on with ``run``, the run in progress: it is resumed and
        names that run. A resumed run_started for another run starts that run afresh (the
        supervisor never writes one; a hand-written log may)."""
        return self.resumed and self.run == run


class RunEnded(EventBase, frozen=True, tag="run_ended"):
    """A run finished: ``completed``, ``aborted`` or ``failed``."""

    outcome: str
    reason: str = ""


class ConfigLoaded(EventBase, frozen=True, tag="config_loaded"):
    """The configuration in force, recorded before any decision uses it."""

    config: dict[str, Any]
    path: str = ""
    digest: str = ""


class PhaseEntered(EventBase, frozen=True, tag="phase_entered"):
    """The team entered a phase (planning, execution, review, iteration)."""

    phase: str
    iteration: int = 0
    expected_s: float = 0.0
    reason: str = ""


class PhaseCompleted(EventBase, frozen=True, tag="phase_completed"):
    """The team finished a phase."""

    phase: str
    iteration: int = 0
    outcome: str = "done"
    reason: str = ""


# Agents


class AgentRegistered(EventBase, frozen=True, tag="agent_registered"):
    """An agent process joined the team."""

    agent: str
    role: str
    model: str = ""
    pid: int = 0
    host: str = ""
    command: str = ""  # for exec agents: the external command serving the role


class AgentStatusChanged(EventBase, frozen=True, tag="agent_status_changed"):
    """An agent's status changed (idle, working, paused, stopped, crashed, …)."""

    agent: str
    status: str
    task_id: str = ""
    detail: str = ""


class Heartbeat(EventBase, frozen=True, tag="heartbeat"):
    """An agent is alive; when it holds a task, this extends its lease."""

    agent: str
    task_id: str = ""
    lease_until: float = 0.0


# Tasks


class TaskSubmitted(EventBase, frozen=True, tag="task_submitted"):
    """A unit of work entered the board."""

    task_id: str
    title: str
    task_kind: str = "general"  # lint, format, typecheck, architecture, refactor, research, …
    role: str = ""  # which role should do it
    phase: str = ""
    deps: tuple[str, ...] = ()
    prompt: str = ""
    files: tuple[str, ...] = ()
    lines: int = 0
    languages: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    interactive: bool = False
    priority: int = 0
    max_attempts: int = 3
    parent: str = ""  # the review, checkpoint or plan this task belongs to
    round: int = 0  # review round, for critique and decide tasks


class TaskRouted(EventBase, frozen=True, tag="task_routed"):
    """The router chose a model for a task; every candidate's score is kept."""

    task_id: str
    model: str
    reason: str = ""
    tier: str = ""
    complexity: float = 0.0
    prompt_tokens: int = 0
    capabilities: tuple[str, ...] = ()
    candidates: tuple[CandidateScore, ...] = ()
    batch_id: str = ""


class TaskBatched(EventBase, frozen=True, tag="task_batched"):
    """Small tasks of one kind were grouped into one model call."""

    batch_id: str
    task_ids: tuple[str, ...]
    model: str
    reason: str = ""


class TaskClaimed(EventBase, frozen=True, tag="task_claimed"):
    """An agent holds a task until ``lease_until`` (event time) unless it renews the lease."""

    task_id: str
    agent: str
    lease_until: float
    attempt: int = 1


class TaskStarted(EventBase, frozen=True, tag="task_started"):
    """An agent began work on a claimed task."""

    task_id: str
    agent: str
    attempt: int = 1
    model: str = ""


class TaskCompleted(EventBase, frozen=True, tag="task_completed"):
    """A task finished successfully."""

    task_id: str
    agent: str
    attempt: int = 1
    summary: str = ""
    output: dict[str, Any] = msgspec.field(default_factory=dict)
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0


class TaskFailed(EventBase, frozen=True, tag="task_failed"):
    """An attempt failed; ``retryable`` says whether the board may hand the task out again."""

    task_id: str
    agent: str
    attempt: int = 1
    error: str = ""
    retryable: bool = True
    reply: str = ""  # the offending model reply, kept for the post-mortem


class TaskTimedOut(EventBase, frozen=True, tag="task_timed_out"):
    """A task's lease or time limit ran out."""

    task_id: str
    agent: str = ""
    attempt: int = 1
    lease_until: float = 0.0


class TaskCancelled(EventBase, frozen=True, tag="task_cancelled"):
    """A task was withdrawn."""

    task_id: str
    reason: str = ""


# Model calls, hardware, servers


class ModelCallFinished(EventBase, frozen=True, tag="model_call_finished"):
    """A latency observation: one call to a model, whatever its outcome.

    ``outcome`` is ``ok``, ``error``, ``timeout``, ``invalid`` (reply failed validation) or
    ``rejected`` (the server refused, e.g. 503). Times are milliseconds.
    """

    model: str
    endpoint: str = ""
    model_name: str = ""
    task_id: str = ""
    agent: str = ""
    ttft_ms: float = 0.0
    total_ms: float = 0.0
    load_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    outcome: str = "ok"
    http_status: int = 0
    error: str = ""
    retry_after_s: float = 0.0
    reply: str = ""
    batch_id: str = ""
    cost: float = 0.0


class HardwareSampled(EventBase, frozen=True, tag="hardware_sampled"):
    """A hardware reading. No driver or no GPU is a normal reading with ``gpus=()``."""

    host: str = ""
    gpus: tuple[GpuSample, ...] = ()
    nvml_error: str = ""
    driver_version: str = ""
    cpu_count: int = 0
    ram_total: int = 0
    ram_available: int = 0
    ram_percent: float = 0.0
    swap_total: int = 0
    swap_used: int = 0
    load_avg: tuple[float, ...] = ()
    disk_free: int = 0


class ModelServerSampled(EventBase, frozen=True, tag="model_server_sampled"):
    """A model server's reading; unreachable is a reading too (``reachable=False``)."""

    endpoint: str
    api: str = ""
    reachable: bool = True
    error: str = ""
    version: str = ""
    available: tuple[str, ...] = ()
    resident: tuple[ResidentModel, ...] = ()
    running: int | None = None
    waiting: int | None = None
    kv_cache_usage: float | None = None


# Messages, trust, reviews, decisions


class MessageSent(EventBase, frozen=True, tag="message_sent"):
    """A structured message in the seed's format; ``sender`` is the appending process's identity."""

    msg_id: str
    sender: str
    to: str  # an agent or "ALL"
    type: str  # STATUS, REQUEST, RESPONSE, DECISION, ALERT
    priority: str = "NORMAL"  # LOW, NORMAL, HIGH, EMERGENCY
    content: str = ""
    context: str = ""
    expected_response: str = ""
    reply_to: str = ""
    phase: str = ""


class MessageRejected(EventBase, frozen=True, tag="message_rejected"):
    """A message broke the topology rules and was not delivered."""

    sender: str
    to: str
    type: str
    reason: str
    priority: str = "NORMAL"
    content: str = ""
    phase: str = ""
    msg_id: str = ""  # the refused message's id (issue 6)


class TrustChanged(EventBase, frozen=True, tag="trust_changed"):
    """An agent's trust score (1 to 10) changed, with the evidence that caused it."""

    agent: str
    old: float
    new: float
    reason: str
    evidence_seq: int = 0


class CheckpointWritten(EventBase, frozen=True, tag="checkpoint_written"):
    """Scribe's milestone summary, which becomes the context of later prompts."""

    checkpoint_id: str
    trigger: str
    summary: str
    phase: str = ""
    reports: dict[str, str] = msgspec.field(default_factory=dict)
    decision: str = "continue"  # continue, revise, escalate
    next_trigger: str = ""
    state_digest: str = ""


class ReviewOpened(EventBase, frozen=True, tag="review_opened"):
    """A review (debate) began on a subject."""

    review_id: str
    subject: str
    participants: tuple[str, ...] = ()
    max_rounds: int = 3
    task_id: str = ""


class PositionTaken(EventBase, frozen=True, tag="position_taken"):
    """An agent's stance in a review round."""

    review_id: str
    agent: str
    round: int
    stance: str  # approve, request_changes, reject, …
    confidence: float = 1.0
    critical_bugs: int = 0
    rationale: str = ""
    fundamental_flaw: bool = False  # the Architect flags a fundamental design flaw (issue 7)


class RoundClosed(EventBase, frozen=True, tag="round_closed"):
    """A review round ended; ``rule`` names the convergence rule that fired, if any."""

    review_id: str
    round: int
    converged: bool = False
    rule: str = ""
    tally: dict[str, float] = msgspec.field(default_factory=dict)


class DecisionMade(EventBase, frozen=True, tag="decision_made"):
    """The team (or the Director) concluded something; ``rule`` says how."""

    decision_id: str
    subject: str
    outcome: str
    rule: str  # unanimous, supermajority, max_rounds, stable, diminishing_returns, director
    review_id: str = ""
    by: str = "director"
    rationale: str = ""
    dissent: tuple[str, ...] = ()
    controversy: str = ""
    pending: bool = False  # a decision still awaited (shown under "Pending Decisions")
    irreversible: bool = False  # acting on it cannot be undone: a human must confirm (issue 7)


# Emergencies


class DetectorFired(EventBase, frozen=True, tag="detector_fired"):
    """A detection rule matched; ``value`` is what was measured against ``threshold``."""

    detector: str
    level: int
    message: str = ""
    agent: str = ""
    task_id: str = ""
    model: str = ""
    value: float = 0.0
    threshold: float = 0.0
    evidence: tuple[int, ...] = ()


class EscalationRaised(EventBase, frozen=True, tag="escalation_raised"):
    """The escalation level rose (0 normal … 4 abort)."""

    escalation_id: str
    level: int
    rule: str
    reason: str = ""
    agent: str = ""
    task_id: str = ""
    evidence: tuple[int, ...] = ()
    subject: str = ""  # what recurs: "<detector>:<agent|task|model>" (issue 7)


class EscalationResolved(EventBase, frozen=True, tag="escalation_resolved"):
    """An escalation ended."""

    escalation_id: str
    resolution: str = ""
    by: str = ""


class AlertRaised(EventBase, frozen=True, tag="alert_raised"):
    """Something a human must know; rendered to ``alerts/ALERT-<time>-<seq>.md``."""

    alert_id: str
    level: int
    rule: str
    title: str
    summary: str = ""
    evidence: tuple[int, ...] = ()
    actions: tuple[str, ...] = ()  # what the team did
    advice: tuple[str, ...] = ()  # what the human should do
    escalation_id: str = ""


class AlertDelivered(EventBase, frozen=True, tag="alert_delivered"):
    """One delivery attempt of an alert to a channel (file, log, webhook)."""

    alert_id: str
    channel: str
    ok: bool
    attempt: int = 1
    status: int = 0
    error: str = ""


class CircuitOpened(EventBase, frozen=True, tag="circuit_opened"):
    """A circuit breaker opened: processing of ``target`` halts until it closes."""

    target: str
    scope: str = "model"  # model, phase, run
    reason: str = ""
    failures: int = 0
    retry_at: float = 0.0  # event time of the next half-open probe


class CircuitClosed(EventBase, frozen=True, tag="circuit_closed"):
    """A circuit breaker closed again."""

    target: str
    scope: str = "model"
    reason: str = ""


class HumanCommand(EventBase, frozen=True, tag="human_command"):
    """A human's instruction: ack, pause, resume, abort, force, …"""

    command: str
    target: str = ""
    text: str = ""


class Note(EventBase, frozen=True, tag="note"):
    """Free text from an operator or an agent."""

    text: str


Event = (
    RunStarted
    | RunEnded
    | ConfigLoaded
    | PhaseEntered
    | PhaseCompleted
    | AgentRegistered
    | AgentStatusChanged
    | Heartbeat
    | TaskSubmitted
    | TaskRouted
    | TaskBatched
    | TaskClaimed
    | TaskStarted
    | TaskCompleted
    | TaskFailed
    | TaskTimedOut
    | TaskCancelled
    | ModelCallFinished
    | HardwareSampled
    | ModelServerSampled
    | MessageSent
    | MessageRejected
    | TrustChanged
    | CheckpointWritten
    | ReviewOpened
    | PositionTaken
    | RoundClosed
    | DecisionMade
    | DetectorFired
    | EscalationRaised
    | EscalationResolved
    | AlertRaised
    | AlertDelivered
    | CircuitOpened
    | CircuitClosed
    | HumanCommand
    | Note
)

EVENT_TYPES: tuple[type[EventBase], ...] = Event.__args__
ALL_KINDS: dict[str, type[EventBase]] = {
    t.__struct_config__.tag: t  # type: ignore[misc]
    for t in EVENT_TYPES
}

ENCODER = msgspec.json.Encoder()
DECODER = msgspec.json.Decoder(Event)
_MANY = msgspec.json.Decoder(list[Event])


def kind_of(event: EventBase) -> str:
    """Return the tag an event is stored under."""
    return str(event.__struct_config__.tag)


def encode(event: EventBase) -> bytes:
    """Encode one event as compact JSON."""
    return ENCODER.encode(event)


def decode(data: bytes | str) -> Event:
    """Decode one event; raises ``msgspec.ValidationError`` with the ``$.field`` path."""
    event: Event = DECODER.decode(data)
    return event


def decode_many(data: bytes) -> list[Event]:
    """Decode a JSON array of events in one pass (the fast path for reading a log)."""
    return _MANY.decode(data)
