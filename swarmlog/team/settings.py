"""The team protocol's settings: the ``[team]`` table of ``swarmlog.toml``, seed defaults.

Every threshold the team rules use lives here, so a run's rules are fully described by the
configuration recorded in its log. ``team_settings`` validates a plain dict (already parsed from
TOML) and names the offending key path in its error.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec

from swarmlog.errors import MISSING, ConfigError, value_at

__all__ = [
    "AGENTS",
    "CHECKPOINT_TRIGGERS",
    "DEFAULT_RULES",
    "DEFAULT_SETTINGS",
    "MESSAGE_TYPES",
    "PHASES",
    "PRIORITIES",
    "CheckpointSettings",
    "ContextSettings",
    "ConvergenceSettings",
    "PhaseSettings",
    "TeamSettings",
    "TopologyRule",
    "TopologySettings",
    "TrustSettings",
    "team_settings",
]

PHASES: tuple[str, ...] = ("planning", "execution", "review", "iteration")
AGENTS: tuple[str, ...] = (
    "director",
    "architect",
    "scout",
    "builder",
    "refactorer",
    "inspector",
    "scribe",
)
MESSAGE_TYPES: tuple[str, ...] = ("STATUS", "REQUEST", "RESPONSE", "DECISION", "ALERT")
PRIORITIES: tuple[str, ...] = ("LOW", "NORMAL", "HIGH", "EMERGENCY")
CHECKPOINT_TRIGGERS: tuple[str, ...] = (
    "component_completed",  # a Builder task completed
    "research_finished",  # a Scout task completed
    "significant_issues",  # the Inspector found critical bugs
    "phase_transition",  # a phase completed
)

_Fraction = Annotated[float, msgspec.Meta(gt=0.0, le=1.0)]
_Positive = Annotated[float, msgspec.Meta(gt=0.0)]
_Count = Annotated[int, msgspec.Meta(ge=1)]


# Phases


class PhaseSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How long each phase is expected to take, how often the team may iterate, how wide it runs."""

    expected_s: dict[str, _Positive] = msgspec.field(
        default_factory=lambda: {
            "planning": 1800.0,
            "execution": 7200.0,
            "review": 1800.0,
            "iteration": 3600.0,
        }
    )
    max_iterations: Annotated[int, msgspec.Meta(ge=0)] = 3
    max_concurrent: _Count = 2  # the seed's maxConcurrent: Builder and Scout at once
    overdue_factor: _Positive = 2.0  # the seed's runaway rule: phase duration > 2x expected

    def __post_init__(self) -> None:
        unknown = sorted(set(self.expected_s) - set(PHASES))
        if unknown:
            raise ValueError(
                f"expected_s names unknown phase {unknown[0]!r}; phases are {', '.join(PHASES)}"
            )


# Topology


class TopologyRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One line of the communication topology; the first rule that matches a message decides.

    ``sender`` and ``to`` are a role, ``*`` (anyone) or, for ``to``, ``ALL`` (a broadcast). An
    empty ``types``, ``priorities`` or ``phases`` matches any; ``except_sender`` excludes roles.
    """

    sender: str = "*"
    to: str = "*"
    types: tuple[str, ...] = ()
    priorities: tuple[str, ...] = ()
    phases: tuple[str, ...] = ()
    except_sender: tuple[str, ...] = ()
    allow: bool = True
    reason: str = ""  # why: quoted in a rejection, or documentation for an allow rule

    def __post_init__(self) -> None:
        bad = [t for t in self.types if t not in MESSAGE_TYPES]
        if bad:
            raise ValueError(f"types has {bad[0]!r}; use {', '.join(MESSAGE_TYPES)}")
        bad = [p for p in self.priorities if p not in PRIORITIES]
        if bad:
            raise ValueError(f"priorities has {bad[0]!r}; use {', '.join(PRIORITIES)}")
        bad = [p for p in self.phases if p not in PHASES]
        if bad:
            raise ValueError(f"phases has {bad[0]!r}; use {', '.join(PHASES)}")


_PEERS = ("builder", "refactorer", "inspector")
_REVIEW_PHASES = ("review", "iteration")
_NOT_DECISION = ("STATUS", "REQUEST", "RESPONSE", "ALERT")


def _peer_rules() -> tuple[TopologyRule, ...]:
    return tuple(
        TopologyRule(
            sender=a,
            to=b,
            types=_NOT_DECISION,
            phases=_REVIEW_PHASES,
            reason="builder, refactorer and inspector talk to each other during review phases",
        )
        for a in _PEERS
        for b in _PEERS  # b == a too: two builders (builder-1, builder-2) are peers
    )


# The seed's topology (guide §5), in first-match order. Authority rules (who may send DECISION)
# come before reachability rules, so even an EMERGENCY cannot carry a decision from a non-Director.
DEFAULT_RULES: tuple[TopologyRule, ...] = (
    TopologyRule(sender="human", reason="the human operator may message anyone"),
    TopologyRule(
        types=("DECISION",),
        except_sender=("director",),
        allow=False,
        reason="only the director sends DECISION messages",
    ),
    TopologyRule(
        to="director",
        priorities=("EMERGENCY",),
        reason="EMERGENCY priority always reaches the director",
    ),
    TopologyRule(sender="director", reason="the director may message anyone and broadcast to ALL"),
    TopologyRule(
        sender="scribe",
        types=("STATUS",),
        reason="the scribe sends state summaries",
    ),
    TopologyRule(
        sender="scribe",
        allow=False,
        reason="the scribe sends only STATUS state summaries",
    ),
    TopologyRule(to="director", reason="every agent may report to the director"),
    TopologyRule(to="scribe", reason="the scribe receives everything"),
    TopologyRule(to="scout", types=("REQUEST",), reason="anyone may query the scout"),
    TopologyRule(sender="scout", types=("RESPONSE",), reason="the scout answers queries"),
    TopologyRule(
        sender="architect",
        types=("STATUS", "RESPONSE", "ALERT"),
        reason="the architect advises",
    ),
    TopologyRule(
        sender="architect",
        allow=False,
        reason="the architect advises but does not direct (no REQUEST to act, no DECISION)",
    ),
    TopologyRule(
        to="ALL",
        types=("STATUS",),
        reason="any agent may broadcast a status update (the seed's example 1)",
    ),
    *_peer_rules(),
)


class TopologySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Who may send what to whom, and in which phase; plus which agent ids play which role."""

    rules: tuple[TopologyRule, ...] = DEFAULT_RULES
    agents: tuple[str, ...] = AGENTS  # known roles; a message to anyone else is refused
    roles: dict[str, str] = msgspec.field(
        default_factory=dict
    )  # agent id -> role, e.g. b2 -> builder


# Reviews and convergence


class ConvergenceSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """When a review stops (guide §6): the rules run in this order after each round."""

    supermajority: _Fraction = 0.7  # strictly greater than: 5 of 7 equal votes is 0.714
    max_rounds: _Count = 3
    stable: bool = True  # no position changed since the previous round -> stop with the majority
    diminishing_returns: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.1
    approve_stances: tuple[str, ...] = ("approve", "approved", "accept")


# Trust


class TrustSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Trust scores: range, start, and how much each kind of evidence moves them."""

    start: float = 7.0
    min: float = 1.0
    max: float = 10.0
    critical_bug: float = -2.0
    first_round_approval: float = 1.0
    timeout: float = -1.0
    invalid_reply: float = -1.0
    emergency_below: float = 3.0
    invalid_reply_prefix: str = "invalid reply"  # TaskFailed.error starting with this (any case)
    exempt: tuple[str, ...] = ("director", "scribe", "human")  # the seed's "N/A" rows

    def __post_init__(self) -> None:
        if not self.min <= self.start <= self.max:
            raise ValueError(
                f"start {self.start} must lie within min {self.min} and max {self.max}"
            )


# Context and checkpoints


class ContextSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How much context one model call may carry (guide §10: set max context per agent call)."""

    max_tokens: _Count = 8000
    per_agent: dict[str, _Count] = msgspec.field(default_factory=dict)
    archive_completed_phases: bool = True

    def budget_for(self, agent: str) -> int:
        """Return the prompt-context budget in tokens for one agent."""
        return self.per_agent.get(agent, self.max_tokens)


class CheckpointSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which milestones trigger a checkpoint (guide §3: per milestone, not time-based)."""

    triggers: tuple[str, ...] = CHECKPOINT_TRIGGERS
    significant_bugs: _Count = 1  # an Inspector finding this many critical bugs is significant

    def __post_init__(self) -> None:
        bad = [t for t in self.triggers if t not in CHECKPOINT_TRIGGERS]
        if bad:
            raise ValueError(f"triggers has {bad[0]!r}; use {', '.join(CHECKPOINT_TRIGGERS)}")


class TeamSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything the team rules read, as the ``[team]`` table of ``swarmlog.toml``."""

    phases: PhaseSettings = PhaseSettings()
    topology: TopologySettings = TopologySettings()
    review: ConvergenceSettings = ConvergenceSettings()
    trust: TrustSettings = TrustSettings()
    context: ContextSettings = ContextSettings()
    checkpoints: CheckpointSettings = CheckpointSettings()


DEFAULT_SETTINGS = TeamSettings()

_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<field>[^`]*)`")


def team_settings(d: dict[str, Any] | None = None) -> TeamSettings:
    """Validate the ``[team]`` table and return the settings (defaults for anything left out).

    Raises:
        ConfigError: a key is unknown or a value has the wrong type or range; the message names
            the key path (``[team].review.supermajority``) and the bad value.
    """
    try:
        return msgspec.convert(d or {}, TeamSettings)
    except msgspec.ValidationError as exc:
        raise _config_error(str(exc), d or {}) from exc


def _config_error(message: str, d: dict[str, Any]) -> ConfigError:
    match = _PATH.search(message)
    path = match.group("path") if match else ""
    problem = message[: match.start()] if match else message
    unknown = _UNKNOWN.match(problem)
    if unknown:
        path = f"{path}.{unknown.group('field')}"
    value = value_at(d, path)
    first = problem.split(" ", 1)[0]
    if isinstance(value, dict) and first in value:  # a cross-field check names its field first
        path, value = f"{path}.{first}", value[first]
    shown = "" if value is MISSING else f" (got {value!r:.80})"
    return ConfigError(
        f"[team]{path}: {problem}{shown}; fix it in swarmlog.toml and run 'swarmlog config check'"
    )
