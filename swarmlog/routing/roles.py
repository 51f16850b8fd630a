"""What a role's tasks need of a model, and whether any configured model can give it.

One rule serves the scheduler (which adds ``[agents.ROLE].capabilities`` to the tasks it submits
and fails for good a task no profile can ever take), ``swarmlog route`` (which explains a
decision for a role as the scheduler would make it) and the pre-flight of ``swarmlog run``,
``config check`` and ``doctor`` (which refuse a night in which some role's first task could never
be routed, instead of letting it wait forever).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from swarmlog.events import ConfigLoaded, EventBase, TaskSubmitted
from swarmlog.routing.complexity import estimate, features_of
from swarmlog.routing.stats import RouterState, project

__all__ = ["never_routable", "unserved_roles", "with_role_capabilities"]


def with_role_capabilities(event: EventBase, config: Mapping[str, Any]) -> EventBase:
    """A role's tasks need the capabilities ``[agents.ROLE].capabilities`` lists (e.g. the
    Director's a large model's), unless the task names its own."""
    if not isinstance(event, TaskSubmitted) or event.capabilities:
        return event
    caps = config.get("agents", {}).get(event.role, {}).get("capabilities") or ()
    return msgspec.structs.replace(event, capabilities=tuple(caps)) if caps else event


def never_routable(state: RouterState, task: TaskSubmitted) -> bool:
    """True when no profile the task may use (its role's pinned one, else any) has the
    capabilities it needs (waiting will not help)."""
    needed = estimate(features_of(task)).capabilities
    pin = state.config.pinned(task.role)
    return not any(
        (pin is None or p.name == pin)
        and (not p.capabilities or all(c in p.capabilities for c in needed))
        for p in state.config.profiles
    )


def unserved_roles(config: Mapping[str, Any], roles: Iterable[str]) -> list[str]:
    """Return one line per role in ``roles`` that no ``[models.*]`` profile of ``config`` (a
    ``config_loaded`` dict) can serve, saying what it needs and what to change; [] when all can."""
    models: Mapping[str, Any] = config.get("models") or {}
    if not models:
        return [
            "no [models.*] profile is configured: add one to swarmlog.toml ('swarmlog init' "
            "detects Ollama and OpenAI-compatible servers), or try 'swarmlog run --sim demo'"
        ]
    state = project([ConfigLoaded(seq=1, ts=0.0, config=dict(config))])
    out = []
    for role in roles:
        probe = TaskSubmitted(seq=2, ts=0.0, task_id=f"{role}-probe", title="probe", role=role)
        task = with_role_capabilities(probe, config)
        assert isinstance(task, TaskSubmitted)
        if not never_routable(state, task):
            continue
        pin = state.config.pinned(role)
        needs = ", ".join(task.capabilities)
        if pin is not None:
            has = ", ".join(models.get(pin, {}).get("capabilities") or ()) or "none"
            out.append(
                f"agents.{role}: its pinned model {pin!r} lacks capabilities it needs "
                f"(needs {needs}; {pin} has {has}); pin another model or change "
                f"agents.{role}.capabilities"
            )
            continue
        offered = "; ".join(
            f"{name}: {', '.join(m.get('capabilities') or ()) or 'any'}"
            for name, m in sorted(models.items())
        )
        out.append(
            f"agents.{role}: no [models.*] profile has the capabilities it needs ({needs}); "
            f"profiles offer {offered}; add them to a profile's capabilities or change "
            f"agents.{role}.capabilities"
        )
    return out
