"""Message admission (guide §5): a message is delivered only if the topology allows it.

``admit`` is the one path by which a ``message_sent`` enters the log. The sender is the identity
of the appending process, not a field it may choose; the phase is folded from the log; a message
that breaks a rule is recorded as ``message_rejected`` and refused with ``ProtocolViolation``.
The rest of this module is pure: ``judge`` (the decision), ``prioritise`` and ``inbox`` (EMERGENCY
to the Director first), and ``render_message`` (the seed's Markdown shape).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Protocol

from msgspec.structs import replace

from swarmlog.errors import ProtocolViolation, SeqConflict
from swarmlog.events import Event, EventBase, MessageRejected, MessageSent
from swarmlog.team import phases
from swarmlog.team.settings import DEFAULT_SETTINGS, PRIORITIES, TeamSettings
from swarmlog.team.topology import BROADCAST, check_message, normalise_name, role_of

__all__ = [
    "AppendableLog",
    "admit",
    "display_name",
    "inbox",
    "is_urgent",
    "judge",
    "prioritise",
    "recipients",
    "render_message",
]


class AppendableLog(Protocol):
    """What ``admit`` needs of an event log (``FileLog`` and ``MemoryLog`` both qualify)."""

    def append(
        self, events: Sequence[EventBase], *, expected_seq: int | None = None
    ) -> list[Event]: ...

    def read(self, after: int = 0) -> Iterable[Event]: ...


# The decision (pure)


def judge(
    event: MessageSent,
    sender_identity: str,
    phase: str,
    settings: TeamSettings = DEFAULT_SETTINGS,
) -> MessageSent | MessageRejected:
    """Return the message as it will be stored, or the rejection that records why it may not be.

    The stored message carries the canonical sender (the identity), recipient, type and priority,
    the phase it was judged in, and ``actor`` set to the identity.
    """
    identity = normalise_name(sender_identity)
    claimed = normalise_name(event.sender) if event.sender.strip() else identity
    msg_type = event.type.strip().upper()
    priority = event.priority.strip().upper()
    to = normalise_name(event.to)
    if claimed != identity:
        reason: str | None = (
            f"sender {event.sender!r} is not the appending process {sender_identity!r}; "
            f"an agent sends only as itself (its SWARMLOG_AGENT identity)"
        )
    else:
        reason = check_message(identity, to, msg_type, priority, phase, settings.topology)
    if reason is not None:
        return MessageRejected(
            msg_id=event.msg_id,
            sender=identity,
            to=event.to,
            type=event.type,
            reason=reason,
            priority=event.priority,
            content=event.content,
            phase=phase,
            run=event.run,
            actor=identity,
            ts=event.ts,
        )
    return replace(
        event, sender=identity, to=to, type=msg_type, priority=priority, phase=phase, actor=identity
    )


# The I/O edge


def admit(
    log: AppendableLog,
    event: MessageSent,
    sender_identity: str,
    *,
    settings: TeamSettings = DEFAULT_SETTINGS,
    phase_state: phases.PhaseState | None = None,
    expected_seq: int | None = None,
    attempts: int = 8,
) -> Event:
    """Append ``event`` if the topology allows it and return it as stored.

    The phase is folded from the log (from ``phase_state`` onwards when the caller keeps one), and
    the append is conditional on the log not having moved since, so a phase change cannot slip in
    between the check and the append; after ``attempts`` conflicts the last try is unconditional.

    Raises:
        ProtocolViolation: the message was refused; a ``message_rejected`` event records it.
        SeqConflict: ``expected_seq`` was given and the log does not end there.
    """
    state = phase_state or phases.EMPTY
    for attempt in range(max(1, attempts)):
        state = phases.project(log.read(after=state.seq), state)
        verdict = judge(event, sender_identity, state.current, settings)
        guard = expected_seq
        if guard is None and attempt < attempts - 1:
            guard = state.seq
        try:
            stored = log.append([verdict], expected_seq=guard)[0]
        except SeqConflict:
            if expected_seq is not None:
                raise
            continue
        if isinstance(verdict, MessageRejected):
            raise ProtocolViolation(
                f"message {event.msg_id!r} refused (message_rejected seq {stored.seq}): "
                f"{verdict.reason}"
            )
        return stored
    raise AssertionError(
        "unreachable: the last attempt appends unconditionally"
    )  # pragma: no cover


# Delivery order and addressing (pure)

_RANK = {p: i for i, p in enumerate(reversed(PRIORITIES))}  # EMERGENCY 0 … LOW 3


def is_urgent(message: MessageSent, director: str = "director") -> bool:
    """Say whether a message must reach the Director at once (EMERGENCY addressed to it)."""
    return message.priority == "EMERGENCY" and normalise_name(message.to) in (director, BROADCAST)


def prioritise(messages: Iterable[MessageSent], director: str = "director") -> list[MessageSent]:
    """Order messages for delivery: urgent ones first, then by priority, then by seq."""
    return sorted(
        messages,
        key=lambda m: (
            not is_urgent(m, director),
            _RANK.get(m.priority, len(_RANK)),
            m.seq,
        ),
    )


def recipients(message: MessageSent, settings: TeamSettings = DEFAULT_SETTINGS) -> tuple[str, ...]:
    """Return the roles a message reaches: one agent, or for ``ALL`` every agent but the sender."""
    to = normalise_name(message.to)
    if to != BROADCAST:
        return (to,)
    sender = role_of(message.sender, settings.topology)
    return tuple(a for a in settings.topology.agents if a != sender)


def inbox(messages: Iterable[MessageSent], agent: str) -> list[MessageSent]:
    """Return the messages addressed to ``agent`` (directly or via ``ALL``), in delivery order."""
    name = normalise_name(agent)
    mine = [
        m
        for m in messages
        if normalise_name(m.to) == name
        or (normalise_name(m.to) == BROADCAST and normalise_name(m.sender) != name)
    ]
    return prioritise(mine)


# Rendering (pure)


def display_name(name: str) -> str:
    """Return a name as the seed writes it: ``ALL``, else capitalised (``Builder``)."""
    clean = normalise_name(name)
    return clean if clean == BROADCAST else clean[:1].upper() + clean[1:]


def render_message(m: MessageSent) -> str:
    """Render a message in the seed's Markdown shape; the timestamp is the event time in UTC."""
    stamp = dt.datetime.fromtimestamp(m.ts, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    head = [
        f"FROM: {display_name(m.sender)}",
        f"TO: {display_name(m.to)}",
        f"TYPE: {m.type}",
        f"PRIORITY: {m.priority}",
        f"TIMESTAMP: {stamp}",
    ]
    if m.reply_to:
        head.append(f"IN REPLY TO: {m.reply_to}")
    sections = [
        ("Content", m.content),
        ("Context", m.context),
        ("Expected Response", m.expected_response),
    ]
    body = [f"### {title}\n{text.strip() or 'None.'}" for title, text in sections]
    return "\n".join(head) + "\n\n" + "\n\n".join(body) + "\n"
