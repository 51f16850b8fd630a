"""Model profiles and limits as the router sees them: plain Structs built from ``config_loaded``.

The router is pure, so it never touches the pydantic config: it reads the JSON-able dict that
``Config.to_event_dict()`` recorded in the log and converts it here with ``msgspec.convert``.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import msgspec
from msgspec.structs import force_setattr

__all__ = [
    "DEFAULT_DECODE_TPS",
    "DEFAULT_LOAD_GBPS",
    "DEFAULT_PREFILL_TPS",
    "PRIORITY_RANK",
    "BatchLimits",
    "Cost",
    "Prepared",
    "Profile",
    "RolePolicy",
    "RouterConfig",
    "infer_tier",
    "parse_duration",
    "prepare",
    "rivals",
    "router_config",
    "with_reported_vram",
]

# A cold load reads the weights from disk; 2 GB/s is a conservative NVMe figure (PROTOCOLS.md:
# "a cold load costs the time to read its weights from disk").
DEFAULT_LOAD_GBPS = 2.0
# Priors used when neither the config nor the log says how fast a model is.
DEFAULT_PREFILL_TPS = 2000.0
DEFAULT_DECODE_TPS = {"fast": 80.0, "deep": 20.0, "": 30.0}

_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: str | float | int) -> float:
    """Turn ``"60m"``, ``"30s"``, ``"1h"`` or a number of seconds into seconds.

    A negative value means "forever" (Ollama's keep-alive convention) and is returned as ``inf``.
    Raises ValueError with the offending value when it is not a duration.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}; use e.g. 300, '30s', '60m' or '1h'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"not a duration: {value!r}; use e.g. 300, '30s', '60m' or '1h'")
        seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    return float("inf") if seconds < 0 else seconds


class Cost(msgspec.Struct, frozen=True, kw_only=True):
    """Price per 1,000 tokens."""

    input: float = 0.0
    output: float = 0.0


class Profile(msgspec.Struct, frozen=True, kw_only=True):
    """One ``[models.NAME]`` entry, normalised."""

    name: str
    endpoint: str = ""
    model: str = ""
    api: str = "ollama"
    capabilities: tuple[str, ...] = ()
    parallel: int | None = None
    context_length: int = 8192
    vram_gb: float | None = None  # configured, else what the server last reported (below)
    cost_per_1k_tokens: Cost = Cost()
    keep_alive_s: float = 300.0
    timeout_s: float = 600.0
    gpu: int | None = None
    tier: str | None = None
    decode_tps: float | None = None
    prefill_tps: float | None = None
    load_s: float | None = None
    # True when ``vram_gb`` is the size the server reported for the loaded model (Ollama
    # ``/api/ps`` ``size``: weights plus the KV cache of every slot it was loaded with), because
    # the config sets none.
    vram_from_server: bool = False

    @property
    def slots(self) -> int:
        """Parallel slots: the configured ``parallel``, else 1 (Ollama's current default).

        No server reports its slots: Ollama's ``OLLAMA_NUM_PARALLEL`` is not in any of its
        responses, and vLLM's ``/metrics`` gives requests running and waiting, not
        ``--max-num-seqs`` (PROTOCOLS.md).
        """
        return self.parallel or 1


# ``[agents.ROLE].priority`` as a sort key: a lower rank is routed first.
PRIORITY_RANK = {"highest": 0, "high": 1, "normal": 2, "low": 3}
_NORMAL_RANK = PRIORITY_RANK["normal"]


class RolePolicy(msgspec.Struct, frozen=True, kw_only=True):
    """What ``[agents.ROLE]`` asks of the router for that role's tasks."""

    model: str | None = None  # pinned model profile: the only candidate for the role's tasks
    rank: int = _NORMAL_RANK  # PRIORITY_RANK of its priority
    max_concurrent: int | None = None  # its tasks routed, claimed or running at once


class BatchLimits(msgspec.Struct, frozen=True, kw_only=True):
    """``[limits.batching]``: how small same-kind tasks are grouped into one call."""

    max_size: int = 8
    max_wait_s: float = 0.0
    max_tokens: int = 4096


class Prepared(msgspec.Struct, frozen=True, kw_only=True):
    """Per-profile constants every decision needs, derived once per config (not per call)."""

    profile: Profile
    name: str
    capabilities: frozenset[str]
    tier: str
    cost: float  # input + output price per 1k tokens
    slots: int
    prefill_tps: float  # configured or the prior
    tpot_s: float  # prior seconds per output token: 1 / (configured decode rate or the prior)
    # Other profiles pinned to the same GPU, both sizes known: they may not fit beside it.
    rivals: tuple[Profile, ...] = ()


def prepare(profile: Profile, profiles: tuple[Profile, ...] = ()) -> Prepared:
    """Derive a profile's per-decision constants (``profiles``: the whole config, for rivals)."""
    tier = infer_tier(profile)
    c = profile.cost_per_1k_tokens
    return Prepared(
        profile=profile,
        name=profile.name,
        capabilities=frozenset(profile.capabilities),
        tier=tier,
        # 1e308 + 1e308 is inf, and a dearest cost of inf made every price weight 0
        cost=min(c.input + c.output, sys.float_info.max),
        slots=profile.slots,
        prefill_tps=profile.prefill_tps or DEFAULT_PREFILL_TPS,
        tpot_s=1.0 / (profile.decode_tps or DEFAULT_DECODE_TPS.get(tier, 30.0)),
        rivals=rivals(profile, profiles),
    )


def rivals(profile: Profile, profiles: tuple[Profile, ...]) -> tuple[Profile, ...]:
    """Return the other profiles pinned to the same GPU, when every size involved is known."""
    if profile.gpu is None or profile.vram_gb is None:
        return ()
    return tuple(
        q
        for q in profiles
        if q.name != profile.name and q.gpu == profile.gpu and q.vram_gb is not None
    )


class RouterConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the pure router needs from the config in force.

    ``prepared`` is derived from ``profiles`` on construction (and on ``replace``/``convert``);
    any value passed for it is ignored.
    """

    profiles: tuple[Profile, ...] = ()
    max_concurrent: int | None = None
    queue_depth: int = 100
    batching: BatchLimits = BatchLimits()
    seed: int = 0
    tier_penalty: float = 4.0
    cost_weight: float = 0.05
    ewma_tau_s: float = 60.0
    roles: dict[str, RolePolicy] = msgspec.field(default_factory=dict)
    prepared: tuple[Prepared, ...] = ()

    def __post_init__(self) -> None:
        force_setattr(self, "prepared", tuple(prepare(p, self.profiles) for p in self.profiles))

    def pinned(self, role: str) -> str | None:
        """Return the model profile ``[agents.ROLE].model`` pins the role to, or None."""
        policy = self.roles.get(role) if role else None
        return policy.model if policy is not None else None

    def rank(self, role: str) -> int:
        """Return the role's priority rank (``PRIORITY_RANK``); unknown roles are normal."""
        policy = self.roles.get(role)
        return policy.rank if policy is not None else _NORMAL_RANK

    def profile(self, name: str) -> Profile | None:
        """Return the profile called ``name``, or None."""
        for p in self.profiles:
            if p.name == name:
                return p
        return None


def infer_tier(profile: Profile) -> str:
    """Return the profile's tier: its ``tier``, else its name when that is a tier word, else ''."""
    if profile.tier:
        return profile.tier
    return profile.name if profile.name in ("fast", "deep") else ""


def with_reported_vram(config: RouterConfig, reported: dict[tuple[str, str], int]) -> RouterConfig:
    """Give each profile without a configured ``vram_gb`` the size its server last reported.

    ``reported`` maps ``(endpoint, model)`` to bytes, as folded from ``model_server_sampled``;
    the router and ``swarmlog hw`` then treat it as they treat a configured size (in GB).
    """
    changed = False
    profiles = []
    for p in config.profiles:
        size = reported.get((p.endpoint, p.model))
        if size and (p.vram_gb is None or p.vram_from_server):
            gb = size / 1e9
            if p.vram_gb != gb:
                p = msgspec.structs.replace(p, vram_gb=gb, vram_from_server=True)
                changed = True
        profiles.append(p)
    if not changed:
        return config
    return msgspec.structs.replace(config, profiles=tuple(profiles))


def router_config(config: dict[str, Any]) -> RouterConfig:
    """Build the router's view from a ``config_loaded`` dict (``Config.to_event_dict()``)."""
    profiles = []
    for name, raw in sorted((config.get("models") or {}).items()):
        fields = {k: v for k, v in raw.items() if k in Profile.__struct_fields__ and v is not None}
        if "keep_alive" in raw:
            fields["keep_alive_s"] = parse_duration(raw["keep_alive"])
        cost = fields.get("cost_per_1k_tokens")
        if isinstance(cost, int | float):
            fields["cost_per_1k_tokens"] = {"input": cost, "output": cost}
        profiles.append(msgspec.convert({**fields, "name": name}, Profile, strict=False))
    roles = {
        role: RolePolicy(
            model=raw.get("model") or None,
            rank=PRIORITY_RANK.get(str(raw.get("priority") or "normal"), _NORMAL_RANK),
            max_concurrent=raw.get("max_concurrent"),
        )
        for role, raw in sorted((config.get("agents") or {}).items())
        if isinstance(raw, dict)
    }
    limits = config.get("limits") or {}
    routing = config.get("routing") or {}
    batching = limits.get("batching") or {}
    return RouterConfig(
        profiles=tuple(profiles),
        max_concurrent=limits.get("max_concurrent"),
        queue_depth=int(limits.get("queue_depth", 100)),
        batching=msgspec.convert(batching, BatchLimits, strict=False),
        seed=int(routing.get("seed", 0)),
        tier_penalty=float(routing.get("tier_penalty", 4.0)),
        cost_weight=float(routing.get("cost_weight", 0.05)),
        ewma_tau_s=float(routing.get("ewma_tau_s", 60.0)),
        roles=roles,
    )
