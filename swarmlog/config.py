"""Load ``swarmlog.toml`` into validated pydantic models; logged as ``config_loaded`` at run start.

Every error names the file, the key path and the bad value, and says what is allowed.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from swarmlog.errors import ConfigError, did_you_mean
from swarmlog.routing.profile import parse_duration

__all__ = [
    "DEFAULT_AGENTS",
    "FREE_SECTIONS",
    "AgentConfig",
    "Batching",
    "Budget",
    "Config",
    "ConfigInvalid",
    "CostPer1k",
    "Limits",
    "ModelProfile",
    "RoutingSettings",
    "RunConfig",
    "config_digest",
    "load_config",
    "night_problems",
    "parse_config",
]

Api = Literal["ollama", "openai", "anthropic", "sim"]
Priority = Literal["highest", "high", "normal", "low"]

# Sections other helpers own; kept free-form here and validated by their owners (issue 4).
FREE_SECTIONS = ("escalation", "alerts", "team", "log")

# The seed's agent table (seeds/001, §7): timeout, priority, tools.
DEFAULT_AGENTS: dict[str, dict[str, Any]] = {
    "director": {"timeout_s": 120, "priority": "highest", "tools_allow": ["coordination"]},
    "architect": {"timeout_s": 180, "priority": "high", "tools_allow": ["file_read", "analysis"]},
    "scout": {"timeout_s": 300, "priority": "normal", "tools_allow": ["web_search", "file_read"]},
    "builder": {
        "timeout_s": 900,
        "priority": "normal",
        "tools_allow": ["file_read", "file_write", "code"],
    },
    "refactorer": {
        "timeout_s": 600,
        "priority": "normal",
        "tools_allow": ["file_read", "file_write"],
    },
    "inspector": {
        "timeout_s": 600,
        "priority": "normal",
        "tools_allow": ["file_read", "test_runner"],
    },
    "scribe": {"timeout_s": 60, "priority": "low", "tools_allow": ["file_write"]},
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CostPer1k(_Strict):
    """Price per 1,000 input and output tokens."""

    input: float = Field(default=0.0, ge=0)
    output: float = Field(default=0.0, ge=0)


class ModelProfile(_Strict):
    """One ``[models.NAME]`` table."""

    endpoint: str = Field(min_length=1)
    model: str = Field(min_length=1)
    api: Api | None = None
    capabilities: list[str] = Field(default_factory=list)
    parallel: int | None = Field(default=None, ge=1, le=4096)
    context_length: int = Field(default=8192, ge=256)
    # Reply tokens a call may generate; default: half the context, at least 1024, at most 8192.
    max_tokens: int | None = Field(default=None, ge=1)
    vram_gb: float | None = Field(default=None, gt=0)
    cost_per_1k_tokens: CostPer1k = Field(default_factory=CostPer1k)
    keep_alive: str = "5m"
    timeout_s: float = Field(default=600.0, gt=0)
    gpu: int | None = Field(default=None, ge=0)
    tier: str | None = None
    decode_tps: float | None = Field(default=None, gt=0)
    prefill_tps: float | None = Field(default=None, gt=0)
    load_s: float | None = Field(default=None, ge=0)

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, value: str) -> str:
        # Every api speaks HTTP: ollama and sim (a simulated Ollama), openai, anthropic.
        try:
            parts = urlsplit(value)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
        except ValueError:  # a malformed port or IPv6 literal
            ok = False
        if not ok:
            raise ValueError(
                "must be an http(s) URL with a host, e.g. 'http://localhost:11434' "
                "(Ollama, sim) or 'http://localhost:8000/v1' (OpenAI-compatible)"
            )
        return value

    @field_validator("cost_per_1k_tokens", mode="before")
    @classmethod
    def _one_number_means_both(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return {"input": value, "output": value}
        return value

    @field_validator("keep_alive", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = f"{value}s"
        if not isinstance(value, str):
            raise ValueError("keep_alive must be a duration such as '60m', '30s' or -1 (forever)")
        parse_duration(value)
        return value

    @model_validator(mode="after")
    def _default_api(self) -> ModelProfile:
        if self.api is None:
            api = "openai" if self.endpoint.rstrip("/").endswith("/v1") else "ollama"
            object.__setattr__(self, "api", api)
        return self


class AgentConfig(_Strict):
    """One ``[agents.ROLE]`` table; unset fields come from the seed's agent table."""

    model: str | None = None
    capabilities: list[str] = Field(default_factory=list)
    timeout_s: float = Field(default=300.0, gt=0)
    priority: Priority = "normal"
    tools_allow: list[str] = Field(default_factory=list)
    tools_deny: list[str] = Field(default_factory=list)
    # Its tasks routed, claimed or running at once (further ones wait); None: no cap.
    max_concurrent: int | None = Field(default=None, ge=1)
    command: str | None = None
    count: int = Field(default=1, ge=1, strict=True)  # processes for the role (run --workers wins)


class Batching(_Strict):
    """``[limits.batching]``."""

    max_size: int = Field(default=8, ge=1)
    max_wait_s: float = Field(default=0.0, ge=0)  # 0: send what is ready, wait for none
    max_tokens: int = Field(default=4096, ge=1)


class Budget(_Strict):
    """``[limits.budget]``; None means unlimited."""

    tokens: int | None = Field(default=None, ge=0)
    cost: float | None = Field(default=None, ge=0)
    wall_s: float | None = Field(default=None, gt=0)


class Limits(_Strict):
    """``[limits]``: the seed recommends 2 concurrent calls, matching OLLAMA_NUM_PARALLEL=2."""

    max_concurrent: int = Field(default=2, ge=1)
    queue_depth: int = Field(default=100, ge=0)
    batching: Batching = Field(default_factory=Batching)
    budget: Budget = Field(default_factory=Budget)
    lease_s: float = Field(default=300.0, gt=0)
    heartbeat_s: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=3, ge=1)


class RunConfig(_Strict):
    """``[run]``: where Builder and Refactorer may write, what Inspector may run."""

    work_dir: str = "."
    test_command: str | None = None
    test_timeout_s: float = Field(default=600.0, gt=0)


class RoutingSettings(_Strict):
    """``[routing]``: the router's weights and its tie-break seed."""

    seed: int = 0
    tier_penalty: float = Field(default=4.0, ge=1)
    cost_weight: float = Field(default=0.05, ge=0)
    ewma_tau_s: float = Field(default=60.0, gt=0)


class Config(_Strict):
    """The whole ``swarmlog.toml``."""

    models: dict[str, ModelProfile] = Field(default_factory=dict)
    agents: dict[str, AgentConfig] = Field(default_factory=dict)
    limits: Limits = Field(default_factory=Limits)
    run: RunConfig = Field(default_factory=RunConfig)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    escalation: dict[str, Any] = Field(default_factory=dict)
    alerts: dict[str, Any] = Field(default_factory=dict)
    team: dict[str, Any] = Field(default_factory=dict)
    log: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _agent_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        agents = data.get("agents", {})
        if not isinstance(agents, dict):
            return data
        merged: dict[str, Any] = {role: dict(d) for role, d in DEFAULT_AGENTS.items()}
        for role, table in agents.items():
            if isinstance(table, dict):
                merged[role] = {**merged.get(role, {}), **table}
            else:
                merged[role] = table
        return {**data, "agents": merged}

    @model_validator(mode="after")
    def _references(self) -> Config:
        for role in self.agents:
            if role not in DEFAULT_AGENTS:
                near = difflib.get_close_matches(role, DEFAULT_AGENTS, n=1)
                hint = f"did you mean [agents.{near[0]}]? " if near else ""
                raise ValueError(
                    f"[agents.{role}] names no role; {hint}the roles are "
                    f"{', '.join(DEFAULT_AGENTS)}"
                )
        for role, agent in self.agents.items():
            if agent.model is not None and agent.model not in self.models:
                known = ", ".join(sorted(self.models)) or "none configured"
                raise ValueError(
                    f"agents.{role}.model = {agent.model!r} names no [models.*] profile "
                    f"(known: {known})"
                )
        return self

    def section(self, name: str) -> dict[str, Any]:
        """Return one top-level section as a plain dict (free-form ones as written)."""
        if name not in type(self).model_fields:
            raise KeyError(name)
        value = getattr(self, name)
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json")
        if isinstance(value, dict):
            return {
                k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v
                for k, v in value.items()
            }
        raise KeyError(name)

    def to_event_dict(self) -> dict[str, Any]:
        """Return the config as a plain JSON-able dict for a ``config_loaded`` event."""
        return self.model_dump(mode="json")


class ConfigInvalid(ConfigError):
    """Raised when ``swarmlog.toml`` parses but breaks the schema; ``problems`` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        more = (
            f" (and {len(problems) - 1} more; run 'swarmlog config check')" if problems[1:] else ""
        )
        super().__init__(problems[0] + more)


def config_digest(cfg: Config) -> str:
    """Return a stable sha256 hex digest of the config in force (key order does not matter)."""
    text = json.dumps(cfg.to_event_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _problems(where: str, exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            key = str(err["loc"][-1]) if err["loc"] else ""
            keys = _keys_at(err["loc"][:-1])
            allowed = f" (allowed: {', '.join(keys)})" if keys else ""
            hint = did_you_mean(key, keys) or f"; check the spelling{allowed}"
            out.append(f"{where}: {loc}: unknown key (value {err['input']!r}){hint}")
        elif err["type"] == "missing":
            out.append(f"{where}: {loc}: required key is missing; add it")
        elif loc == "(top level)":
            out.append(f"{where}: {msg}")
        else:
            out.append(f"{where}: {loc} = {err['input']!r}: {msg}")
    return out


def _keys_at(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the table at ``loc`` (a pydantic error location) allows, for "did you mean";
    [] where that table is free-form."""
    t: Any = Config
    for part in loc:
        if isinstance(t, type) and issubclass(t, BaseModel):
            field = t.model_fields.get(str(part))
            if field is None:
                return []
            t = field.annotation
        elif get_origin(t) is dict:
            t = get_args(t)[1]  # ``part`` is a name of the user's, e.g. the model "fast"
        else:
            return []
        if get_origin(t) in (Union, UnionType):  # X | None
            t = next((a for a in get_args(t) if a is not type(None)), t)
    if isinstance(t, type) and issubclass(t, BaseModel):
        return list(t.model_fields)
    return []


def parse_config(data: dict[str, Any], *, where: str = "swarmlog.toml") -> Config:
    """Validate a parsed TOML document; raise ConfigError listing every problem."""
    # The free-form sections as written (the model keeps them as they are): checked even when
    # the rest fails, so one run lists every problem.
    sections = {name: data[name] for name in FREE_SECTIONS if isinstance(data.get(name), dict)}
    unloggable = [f"{where}: {p}" for p in _unloggable_numbers(data)]
    if unloggable:  # before the schema, whose own message would hide the cause ("> 0" for nan)
        raise ConfigInvalid(unloggable)
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigInvalid(_problems(where, exc) + _section_problems(sections, where)) from exc
    problems = _section_problems(sections, where)
    if problems:
        raise ConfigInvalid(problems)
    return cfg


_INT64 = 2**63


def _unloggable_numbers(node: Any, path: str = "") -> list[str]:
    """Each number the event log cannot record (``config_loaded`` holds the whole config, and
    snapshots encode it as msgpack): a whole number outside 64 bits, inf or nan."""
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _unloggable_numbers(v, f"{path}.{k}")]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _unloggable_numbers(v, f"{path}.{i}")]
    key = path.removeprefix(".")
    if isinstance(node, int) and not isinstance(node, bool) and not -_INT64 <= node < _INT64:
        return [
            f"{key} = {node}: too large to record in the log (whole numbers must lie within "
            f"±{_INT64 - 1:,}); use a smaller value"
        ]
    if isinstance(node, float) and not math.isfinite(node):
        return [f"{key} = {node!r}: not a finite number; give a number such as 300 or 0.5"]
    return []


Range = tuple[float | None, float | None, str]  # least, most, what the value counts


def _ranges(struct: type, prefix: str = "") -> dict[str, Range]:
    """The number ranges a settings struct declares (``msgspec.Meta`` ge/le/description), by
    key path: the owner's schema is the one source of the bounds this check words."""
    import msgspec.inspect as mi

    info = mi.type_info(struct)
    assert isinstance(info, mi.StructType)
    out: dict[str, Range] = {}
    for f in info.fields:
        t, what = f.type, ""
        if isinstance(t, mi.Metadata):
            what = str((t.extra_json_schema or {}).get("description", ""))
            t = t.type
        if isinstance(t, mi.IntType | mi.FloatType) and (t.ge is not None or t.le is not None):
            out[prefix + f.encode_name] = (t.ge, t.le, what)
        elif isinstance(t, mi.StructType):
            out.update(_ranges(t.cls, f"{prefix}{f.encode_name}."))
    return out


def _allowed_range(lo: float | None, hi: float | None, what: str) -> str:
    if lo is not None and hi is not None:
        return f"{lo:g} to {hi:g} ({what})"
    if lo is not None:
        return f"{lo:g} or more ({what})"
    return f"{hi:g} or less ({what})"


def _range_problems(
    table: dict[str, Any], ranges: dict[str, Range], prefix: str
) -> list[tuple[str, str]]:
    """Return ``(key path, problem)`` for each number outside its range (types are the owner's
    to check)."""
    out = []
    for key, (lo, hi, what) in ranges.items():
        node: Any = table
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, bool) or not isinstance(node, int | float):
            continue
        if (lo is not None and node < lo) or (hi is not None and node > hi):
            path = f"{prefix}.{key}"
            allowed = _allowed_range(lo, hi, what)
            out.append((path, f"{path} = {node!r}: out of range; allowed: {allowed}"))
    return out


def _alerts_problems(alerts: dict[str, Any]) -> list[tuple[str, str]]:
    from swarmlog.escalation.settings import AlertSettings, Webhook, WebhookKind

    out = _range_problems(alerts, _ranges(AlertSettings), "alerts")
    hooks = alerts.get("webhooks")
    if not isinstance(hooks, list):
        return out
    kinds = get_args(WebhookKind)
    for i, hook in enumerate(hooks):
        if not isinstance(hook, dict):
            continue
        kind = hook.get("kind")
        if "kind" in hook and kind not in kinds:
            path = f"alerts.webhooks.{i}.kind"
            allowed = ", ".join(repr(k) for k in kinds)
            out.append((path, f"{path} = {kind!r}: unknown webhook kind; allowed: {allowed}"))
        out += _range_problems(hook, _ranges(Webhook), f"alerts.webhooks.{i}")
    return out


def _owner_path(path: str) -> str:
    """Write ``alerts.webhooks.0.kind`` as the owners do: ``[alerts].webhooks[0].kind``."""
    table, *rest = path.split(".")
    return f"[{table}]" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in rest)


def _section_problems(sections: dict[str, Any], where: str) -> list[str]:
    """Validate the sections whose schemas live with the rules that read them.

    Ranges of ``[escalation]`` numbers and ``[alerts]`` webhook kinds are checked here, in the
    key-path style of every other config error; an owner's error on the same key is not repeated.
    """
    from swarmlog.escalation.settings import (
        EscalationSettings,
        alert_settings,
        escalation_settings,
    )
    from swarmlog.team.settings import team_settings

    checked = {
        "escalation": _range_problems(
            sections.get("escalation") or {}, _ranges(EscalationSettings), "escalation"
        ),
        "alerts": _alerts_problems(sections.get("alerts") or {}),
    }
    problems = []
    for name, validate in (
        ("team", team_settings),
        ("escalation", escalation_settings),
        ("alerts", alert_settings),
    ):
        if name not in sections:
            continue
        ours = checked.get(name, [])
        problems += [f"{where}: {problem}" for _, problem in ours]
        try:
            validate(sections[name])
        except ConfigError as exc:
            text = str(exc)
            if not any(text.startswith(f"{_owner_path(path)}:") for path, _ in ours):
                problems.append(f"{where}: {text}")
    return problems


def night_problems(config: Mapping[str, Any], where: str) -> list[str]:
    """What would stop a night that the schema alone cannot see, one line each, in a config as
    ``config_loaded`` records it: a ``[log]`` section no backend accepts, two budget tables that
    disagree, a webhook below the level alerts start at, a role no ``[models.*]`` profile can
    serve. ``run``, ``config check`` and ``doctor``
    all refuse on these."""
    from swarmlog.defaults import ROLES
    from swarmlog.escalation.settings import budget_disagreements, webhook_problems
    from swarmlog.log.select import log_from_config
    from swarmlog.routing.roles import unserved_roles

    out = []
    try:
        log_from_config(config.get("log") or {}, where=where)
    except ConfigError as exc:
        out.append(str(exc))
    problems = [
        *budget_disagreements(config),
        *webhook_problems(config),
        *unserved_roles(config, ROLES),
    ]
    return out + [f"{where}: {p}" for p in problems]


def load_config(path: Path, *, missing_ok: bool = False) -> Config:
    """Read and validate ``swarmlog.toml``; a missing file gives defaults only if ``missing_ok``."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        if missing_ok:
            return Config()
        raise ConfigError(
            f"{path}: no such config file; run 'swarmlog init' or pass --dir"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror}); check it") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); save it as "
            "UTF-8 (TOML files must be)"
        ) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the syntax") from exc
    return parse_config(data, where=str(path))
