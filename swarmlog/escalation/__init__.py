"""Emergencies (issue 7): detectors, escalation levels 0-4, phase/run circuit breakers, alerts.

The pure core is exported here. Alert delivery (files, log lines, webhooks; httpx) lives in
``swarmlog.escalation.delivery`` and is imported explicitly by the runtime.
"""

from __future__ import annotations

from swarmlog.escalation.breakers import BreakerState, is_halted
from swarmlog.escalation.detectors import DetectorState, observe, observe_all
from swarmlog.escalation.levels import (
    AlertInfo,
    Directive,
    EscalationState,
    OpenEscalation,
    alert_line,
    escalate,
    team_directive,
)
from swarmlog.escalation.pipeline import EmergencyState, react
from swarmlog.escalation.settings import (
    AlertSettings,
    Budget,
    EscalationSettings,
    Webhook,
    alert_settings,
    escalation_settings,
    redact_text,
    redact_url,
)

__all__ = [
    "AlertInfo",
    "AlertSettings",
    "BreakerState",
    "Budget",
    "DetectorState",
    "Directive",
    "EmergencyState",
    "EscalationSettings",
    "EscalationState",
    "OpenEscalation",
    "Webhook",
    "alert_line",
    "alert_settings",
    "escalate",
    "escalation_settings",
    "is_halted",
    "observe",
    "observe_all",
    "react",
    "redact_text",
    "redact_url",
    "team_directive",
]
