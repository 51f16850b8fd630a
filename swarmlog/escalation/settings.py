"""Escalation thresholds and alert channels: the ``[escalation]`` and ``[alerts]`` config tables.

Defaults are the seed guide's (§3 Emergency Protocol, §4 Emergency Detection Rules). Webhook URLs
come only from configuration; ``redact_url`` and ``redact_text`` keep their secrets (userinfo,
query values, token-like path segments, Slack hook paths) out of anything logged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, TypeVar
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
    "escalation_settings",
    "redact_text",
    "redact_url",
]

WebhookKind = Literal["json", "ntfy", "slack"]


class Budget(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The run's budget; 0 means no limit. ``run_started`` budget fields override these."""

    tokens: int = 0
    cost: float = 0.0
    wall_s: float = 0.0


class EscalationSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Detector thresholds and escalation rules (``[escalation]``)."""

    stuck_calls: int = 3  # model calls by one agent without a task_completed
    same_error_repeats: int = 3
    memory_percent: float = 90.0  # fires above
    queue_depth: int = 50  # fires above
    call_latency_s: float = 300.0  # fires above
    vram_percent: float = 95.0  # fires above
    offload: bool = True  # a resident model with size_vram < size
    critical_bugs: int = 5  # fires above, in one review position
    architect_flaw: bool = True
    emergency_messages: bool = True  # an agent's EMERGENCY message calls an emergency meeting
    conflict_disagreement: float = 0.3  # trust-weighted minority share, fires above
    task_attempts: int = 5  # fires above
    phase_overrun_factor: float = 2.0  # fires above factor x expected duration
    trust_below: float = 3.0
    default_trust: float = 7.0  # the seed's starting trust, until trust_changed says otherwise
    budget: Budget = Budget()
    alert_file_min_level: int = 3
    recovery_attempts: int = 2  # failed recoveries before an issue escalates one level


class Webhook(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One webhook channel."""

    name: str
    url: str
    kind: WebhookKind = "json"
    min_level: int = 3
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
    backoff_s: float = 1.0  # first retry delay; doubles each attempt, with jitter
    backoff_max_s: float = 30.0


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
