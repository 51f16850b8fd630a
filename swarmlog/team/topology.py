"""The communication topology (guide §5): which agent may send which message to whom, and when.

Rules are data (``TopologySettings.rules``, the seed's by default) read in order; the first rule
that matches a message allows or refuses it, and a message no rule matches is refused. Agents are
named by role (``builder``) or by an id that maps to a role (``builder-2``, or ``[team].topology
.roles``); ``ALL`` is a broadcast, which the Scribe receives like everyone else.
"""

from __future__ import annotations

from swarmlog.team.settings import (
    DEFAULT_SETTINGS,
    MESSAGE_TYPES,
    PRIORITIES,
    TopologyRule,
    TopologySettings,
)

__all__ = ["BROADCAST", "HUMAN", "check_message", "matching_rule", "normalise_name", "role_of"]

BROADCAST = "ALL"
HUMAN = "human"
_ID_SEPARATORS = ("-", ":", "#", ".", "_")


def normalise_name(name: str) -> str:
    """Return the canonical spelling of an agent id (lower case) or ``ALL``."""
    clean = name.strip()
    return BROADCAST if clean.upper() == BROADCAST else clean.lower()


def role_of(agent: str, topology: TopologySettings = DEFAULT_SETTINGS.topology) -> str:
    """Return the role an agent id plays: the configured mapping, else ``role-N`` → ``role``."""
    name = normalise_name(agent)
    if name == BROADCAST:
        return name
    mapped = topology.roles.get(name) or topology.roles.get(agent)
    if mapped:
        return mapped.lower()
    if name in topology.agents or name == HUMAN:
        return name
    for sep in _ID_SEPARATORS:
        base = name.split(sep, 1)[0]
        if base in topology.agents:
            return base
    return name


def matching_rule(
    sender: str,
    to: str,
    msg_type: str,
    priority: str,
    phase: str,
    topology: TopologySettings = DEFAULT_SETTINGS.topology,
) -> TopologyRule | None:
    """Return the first rule that matches a message between two roles, or None."""
    for rule in topology.rules:
        if rule.sender not in ("*", sender) or sender in rule.except_sender:
            continue
        if rule.to not in ("*", to):  # "*" covers every agent and the ALL broadcast
            continue
        if rule.types and msg_type not in rule.types:
            continue
        if rule.priorities and priority not in rule.priorities:
            continue
        if rule.phases and phase not in rule.phases:
            continue
        return rule
    return None


def check_message(
    sender: str,
    to: str,
    msg_type: str,
    priority: str,
    phase: str,
    rules: TopologySettings = DEFAULT_SETTINGS.topology,
) -> str | None:
    """Return None when the topology allows the message, else the one-line reason it is refused.

    Args:
        sender: the sending agent's id (its role is looked up with ``role_of``).
        to: an agent id or ``ALL``.
        msg_type: STATUS, REQUEST, RESPONSE, DECISION or ALERT.
        priority: LOW, NORMAL, HIGH or EMERGENCY.
        phase: the active phase (``""`` between phases).
        rules: the topology in force.
    """
    if msg_type not in MESSAGE_TYPES:
        return f"unknown message type {msg_type!r}; use one of {', '.join(MESSAGE_TYPES)}"
    if priority not in PRIORITIES:
        return f"unknown priority {priority!r}; use one of {', '.join(PRIORITIES)}"
    sender_role = role_of(sender, rules)
    if sender_role not in rules.agents and sender_role != HUMAN:
        return (
            f"unknown sender {sender!r}; run agents as one of {', '.join(rules.agents)} "
            f"(SWARMLOG_AGENT) or map the id under [team].topology.roles"
        )
    to_role = role_of(to, rules)
    if to_role != BROADCAST and to_role not in rules.agents:
        return f"unknown recipient {to!r}; send to one of {', '.join(rules.agents)} or {BROADCAST}"
    if normalise_name(sender) == normalise_name(to):
        return f"{sender!r} cannot send a message to itself; address another agent or {BROADCAST}"
    rule = matching_rule(sender_role, to_role, msg_type, priority, phase, rules)
    when = f"during {phase}" if phase else "between phases"
    if rule is None:
        return (
            f"{sender_role} may not send {msg_type} to {to} {when}: no topology rule allows it; "
            f"report to the director instead"
        )
    if not rule.allow:
        return f"{sender_role} may not send {msg_type} to {to} {when}: {rule.reason}"
    return None
