"""Escalation thresholds and alert channels: the ``[escalation]`` and ``[alerts]`` config tables.

Defaults are the seed guide's (§3 Emergency Protocol, §4 Emergency Detection Rules). Webhook URLs
come only from configuration; ``redact_url`` and ``redact_text`` keep their secrets (userinfo,
query values, token-like path segments, Slack hook paths) out of anything logged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

import msgspec

from swarmlog.errors import MISSING, ConfigError, value_at

__all__ = [
    "DEFAULT_ALERTS",
    "DEFAULT_ESCALATION",
    "AlertSettings",
    "Budget",
    "EscalationSettings",
    "Webhook",
    "WebhookKind",
    "alert_settings",
    "budget_disagreements",
    "escalation_settings",
    "night_settings",
    "redact_text",
    "redact_url",
    "webhook_problems",
]

WebhookKind = Literal["json", "ntfy", "slack"]


def _bound(what: str, *, ge: float | None = None, le: float | None = None) -> msgspec.Meta:
    """A number's allowed range and what it counts: msgspec enforces the range, and the config
    check (``swarmlog.config``) words its error with both."""
    return msgspec.Meta(ge=ge, le=le, description=what)


_SECONDS = _bound("seconds", ge=0.001)
_LEVEL = _bound("an escalation level", ge=1, le=4)
_TRUST = _bound("a trust score out of 10", ge=0, le=10)


class Budget(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The run's budget; 0 means no limit. ``run_started`` budget fields override these."""

    tokens: Annotated[int, _bound("tokens; 0 means no limit", ge=0)] = 0
    cost: Annotated[float, _bound("a cost; 0 means no limit", ge=0)] = 0.0
    wall_s: Annotated[float, _bound("seconds; 0 means no limit", ge=0)] = 0.0


class EscalationSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Detector thresholds and escalation rules (``[escalation]``)."""

    # model calls by one agent without a task_completed
    stuck_calls: Annotated[int, _bound("model calls", ge=1)] = 3
    same_error_repeats: Annotated[int, _bound("repeats", ge=1)] = 3
    memory_percent: Annotated[float, _bound("a percentage of RAM", ge=0, le=100)] = 90.0  # above
    queue_depth: Annotated[int, _bound("tasks", ge=0)] = 50  # fires above
    call_latency_s: Annotated[float, _SECONDS] = 300.0  # fires above
    vram_percent: Annotated[float, _bound("a percentage of VRAM", ge=0, le=100)] = 95.0  # above
    offload: bool = True  # a resident model with size_vram < size
    critical_bugs: Annotated[int, _bound("bugs", ge=0)] = 5  # fires above, in one position
    architect_flaw: bool = True
    emergency_messages: bool = True  # an agent's EMERGENCY message calls an emergency meeting
    # trust-weighted minority share, fires above
    conflict_disagreement: Annotated[
        float, _bound("a share of the trust-weighted votes", ge=0, le=1)
    ] = 0.3
    task_attempts: Annotated[int, _bound("attempts", ge=0)] = 5  # fires above
    # fires above factor x expected duration
    phase_overrun_factor: Annotated[float, _bound("a factor of the expected duration", ge=1)] = 2.0
    trust_below: Annotated[float, _TRUST] = 3.0
    # the seed's starting trust, until trust_changed says otherwise
    default_trust: Annotated[float, _TRUST] = 7.0
    budget: Budget = Budget()
    alert_file_min_level: Annotated[int, _LEVEL] = 3
    # failed recoveries before an issue escalates one level
    recovery_attempts: Annotated[int, _bound("attempts", ge=0)] = 2


class Webhook(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One webhook channel."""

    name: str
    url: str
    kind: WebhookKind = "json"
    min_level: Annotated[int, _LEVEL] = 3
    timeout_s: float = 5.0
    max_attempts: int = 3

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url must be an http(s) URL, got {redact_url(self.url)!r}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")


class AlertSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Alert channels (``[alerts]``): webhooks and their retry back-off."""

    webhooks: tuple[Webhook, ...] = ()
    backoff_s: Annotated[float, _SECONDS] = 1.0  # first retry delay; doubles, with jitter
    backoff_max_s: Annotated[float, _SECONDS] = 30.0


DEFAULT_ESCALATION = EscalationSettings()
DEFAULT_ALERTS = AlertSettings()

_T = TypeVar("_T")


def _convert(d: Mapping[str, Any] | None, typ: type[_T], table: str) -> _T:
    try:
        return msgspec.convert(dict(d or {}), typ)
    except msgspec.ValidationError as exc:
        problem, _, where = str(exc).partition(" - at `$")
        path = where.rstrip("`")
        unknown = re.search(r"unknown field `([^`]+)`", problem)
        if unknown:
            path = f"{path}.{unknown.group(1)}"
        value = value_at(d or {}, path)
        value = None if value is MISSING else value
        shown = "" if isinstance(value, Mapping) else f" (value {_show(value)})"
        raise ConfigError(
            f"[{table}]{path}: {problem}{shown}; fix it in swarmlog.toml and run "
            f"'swarmlog config check'"
        ) from exc


def _show(value: Any) -> str:
    return repr(redact_url(value)) if isinstance(value, str) and "://" in value else repr(value)


def escalation_settings(d: Mapping[str, Any] | None = None) -> EscalationSettings:
    """Validate the ``[escalation]`` table; errors name the key path and the bad value."""
    return _convert(d, EscalationSettings, "escalation")


def night_settings(config: Mapping[str, Any]) -> EscalationSettings:
    """The escalation settings of a whole config (a ``config_loaded`` dict): ``[escalation]``,
    with the night's budget taken from ``[limits.budget]`` (the README's table) for every limit
    ``[escalation.budget]`` (the table ``init`` writes) leaves at 0; where both set one, the
    ``[escalation.budget]`` value holds (``config check`` refuses the disagreement)."""
    esc = dict(config.get("escalation") or {})
    limits = config.get("limits") or {}
    given = {k: v for k, v in (limits.get("budget") or {}).items() if v}  # None, 0: no limit
    if given:
        budget = dict(esc.get("budget") or {})
        esc["budget"] = {**given, **{k: v for k, v in budget.items() if v}}
    return escalation_settings(esc)


def budget_disagreements(config: Mapping[str, Any]) -> list[str]:
    """One line per budget limit that ``[limits.budget]`` and ``[escalation.budget]`` set apart."""
    limits = (config.get("limits") or {}).get("budget") or {}
    esc = (config.get("escalation") or {}).get("budget") or {}
    return [
        f"limits.budget.{k} = {limits[k]!r} but escalation.budget.{k} = {esc[k]!r}; "
        f"set the night's {k} budget in one of the two tables"
        for k in sorted(set(limits) & set(esc))
        if limits[k] and esc[k] and limits[k] != esc[k]
    ]


def webhook_problems(config: Mapping[str, Any]) -> list[str]:
    """One line per webhook that asks for alerts below the level alerts start at.

    A webhook is sent for each alert, and the monitor raises alerts only from
    ``[escalation].alert_file_min_level`` up, so a hook's lower ``min_level`` would never fire
    for those levels: the person who set it would wait for messages that never come.
    """
    try:
        start = escalation_settings(config.get("escalation")).alert_file_min_level
        hooks = alert_settings(config.get("alerts")).webhooks
    except ConfigError:
        return []  # the schema check reports it
    return [
        f"alerts.webhooks.{i}.min_level = {h.min_level} (webhook {h.name!r}) but alerts start at "
        f"escalation.alert_file_min_level = {start}, so it would never hear of level "
        f"{h.min_level}; set alert_file_min_level = {h.min_level} or min_level = {start}"
        for i, h in enumerate(hooks)
        if h.min_level < start
    ]


def alert_settings(d: Mapping[str, Any] | None = None) -> AlertSettings:
    """Validate the ``[alerts]`` table; errors name the key path and the bad value."""
    return _convert(d, AlertSettings, "alerts")


# Redaction

_REDACTED = "***"
_TOKENISH = re.compile(r"^(?=.*\d)[A-Za-z0-9_\-]{8,}$|^[A-Za-z0-9_\-]{24,}$")
# Hosts whose path after a marker segment is the secret itself.
_SECRET_PATH_AFTER = {"services", "webhooks", "hooks", "triggers"}


def redact_url(url: str) -> str:
    """Return ``url`` with userinfo, query values, fragments and token-like path parts hidden."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{_REDACTED}@{netloc.rsplit('@', 1)[1]}"
    segments = parts.path.split("/")
    hide_rest = False
    shown = []
    for seg in segments:
        if hide_rest and seg:
            shown.append(_REDACTED)
            continue
        shown.append(_REDACTED if _TOKENISH.match(seg) else seg)
        if seg.lower() in _SECRET_PATH_AFTER:
            hide_rest = True
    query = "&".join(
        f"{pair.split('=', 1)[0]}={_REDACTED}" if "=" in pair else _REDACTED
        for pair in parts.query.split("&")
        if pair
    )
    return urlunsplit((parts.scheme, netloc, "/".join(shown), query, ""))


def redact_text(text: str, url: str) -> str:
    """Hide every secret of ``url`` wherever it appears in ``text`` (e.g. an httpx error)."""
    safe = redact_url(url)
    out = text.replace(url, safe)
    parts = urlsplit(url)
    secrets = [parts.query, parts.fragment]
    if "@" in parts.netloc:
        secrets += [parts.netloc.rsplit("@", 1)[0], parts.username or "", parts.password or ""]
    secrets += [p.split("=", 1)[-1] for p in parts.query.split("&") if p]
    safe_segments = set(urlsplit(safe).path.split("/"))
    secrets += [s for s in parts.path.split("/") if s and s not in safe_segments]
    for secret in sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True):
        out = out.replace(secret, _REDACTED)
    return out
