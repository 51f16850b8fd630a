"""Projection snapshots under ``memory/snapshots/``: save the folded state, start from the newest.

A snapshot file is msgpack: ``{schema, seq, digest, digests, anchor, marks, sha256, state}``
where ``state`` is the encoded ``SwarmState`` and ``sha256`` covers those bytes, so damage is
caught without re-hashing the state. ``anchor`` identifies the event at ``seq`` (its kind, time,
run and actor), so a snapshot folded from another log — another stream selected with ``--log``,
a log restored from elsewhere — is not applied to this one. A damaged, truncated, outdated-schema
or foreign snapshot is never trusted: it is skipped (the reason is returned, for the command to
show once) and the state is rebuilt from the log.

A snapshot must not hide damage in the log before it either (a command starting from it reads
only the tail). ``marks`` (file logs) hold a CRC-32 of the segment bytes holding records up to
``seq``, and start-up checks them (``FileLog.check_prefix``): a sealed segment untouched since by
its stat, the rest by re-hashing without decoding. Damage there fails the command with its file
and line, exactly as reading the log from zero would. A snapshot without marks (written before
they existed, or from another kind of log) has every record before it checked instead: slower,
once, since the next snapshot written has marks.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import msgspec

from swarmlog.events import Event, EventBase, kind_of
from swarmlog.log.protocol import EventLog, Fingerprinted, SegmentMark
from swarmlog.state import EMPTY, SwarmState, apply, digests
from swarmlog.workspace import remove_file, write_atomic

__all__ = [
    "SCHEMA",
    "Snapshot",
    "anchor_at",
    "anchor_of",
    "fold_tail",
    "list_snapshots",
    "load_snapshot",
    "load_state",
    "newest_snapshot",
    "write_snapshot",
]

SCHEMA = 10  # bump whenever SwarmState's shape or any fold's meaning changes
KEEP = 3  # snapshots kept after a new one is written
_NAME = re.compile(r"^snapshot-(\d{12})\.msgpack$")

log = logging.getLogger(__name__)


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot file's envelope; ``state`` stays raw bytes until its checksum is checked."""

    schema: int
    seq: int
    digest: str
    digests: dict[str, str]
    anchor: str = ""  # of the event at seq; empty in snapshots written before it existed
    marks: tuple[SegmentMark, ...] = ()  # of the log's bytes up to seq; empty: not a file log's
    sha256: str
    state: msgspec.Raw


_ENCODER = msgspec.msgpack.Encoder()
_ENVELOPE = msgspec.msgpack.Decoder(Snapshot)
_STATE = msgspec.msgpack.Decoder(SwarmState)


def _name(seq: int) -> str:
    return f"snapshot-{seq:012d}.msgpack"


def list_snapshots(folder: Path) -> list[tuple[int, Path]]:
    """Return (seq, path) of every snapshot file, newest first."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        m = _NAME.match(path.name)
        if m:
            found.append((int(m.group(1)), path))
    return sorted(found, reverse=True)


def anchor_of(event: EventBase) -> str:
    """Identify an event by fields every backend stores and no upgrade changes."""
    ident = f"{event.seq}|{kind_of(event)}|{event.ts!r}|{event.run}|{event.actor}"
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


def anchor_at(log_: EventLog, seq: int) -> str:
    """Return the anchor of the log's event ``seq`` ("" when the log has no such event)."""
    if seq <= 0:
        return ""
    for event in log_.read(after=seq - 1):
        return anchor_of(event) if event.seq == seq else ""
    return ""


def write_snapshot(
    folder: Path,
    state: SwarmState,
    *,
    anchor: str = "",
    keep: int = KEEP,
    log: EventLog | None = None,
) -> Path:
    """Write ``state`` as a snapshot (atomically) and prune all but the newest ``keep``.

    ``anchor`` is ``anchor_of`` the log's event at ``state.seq``; without it the snapshot cannot
    tell which log it came from and is trusted by any log that is long enough. ``log``, the log
    ``state`` was folded from: a file log marks its bytes up to ``state.seq`` (carrying on the
    marks it checked when the state was loaded), so that a start from this snapshot can tell
    whether they were damaged since. Raises ``LogCorrupt`` if bytes marked for the first time
    hold a damaged record.
    """
    marks = log.fingerprint(state.seq) if isinstance(log, Fingerprinted) else ()
    body = _ENCODER.encode(state)
    sums = digests(state)
    snap = Snapshot(
        schema=SCHEMA,
        seq=state.seq,
        digest=sums["state"],
        digests=sums,
        sha256=hashlib.sha256(body).hexdigest(),
        state=msgspec.Raw(body),
        anchor=anchor,
        marks=marks,
    )
    path = folder / _name(state.seq)
    write_atomic(path, _ENCODER.encode(snap))
    for _seq, old in list_snapshots(folder)[keep:]:
        remove_file(old)
    return path


def load_snapshot(path: Path) -> tuple[Snapshot, SwarmState]:
    """Read one snapshot; raises ``ValueError`` saying why it cannot be trusted."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"unreadable ({exc.strerror})") from exc
    try:
        snap = _ENVELOPE.decode(data)
    except msgspec.MsgspecError as exc:
        raise ValueError(f"damaged envelope ({exc})") from exc
    if snap.schema != SCHEMA:
        raise ValueError(f"schema {snap.schema}, this swarmlog reads schema {SCHEMA}")
    body = bytes(snap.state)
    if hashlib.sha256(body).hexdigest() != snap.sha256:
        raise ValueError("checksum mismatch (the file was damaged)")
    try:
        state = _STATE.decode(body)
    except msgspec.MsgspecError as exc:
        raise ValueError(f"state does not decode ({exc})") from exc
    if state.seq != snap.seq:
        raise ValueError(f"holds seq {state.seq} but is named for seq {snap.seq}")
    return snap, state


def newest_snapshot(
    folder: Path, *, until: int | None = None
) -> tuple[SwarmState | None, list[str]]:
    """Return the newest valid snapshot at or before ``until``, and why others were skipped."""
    _snap, state, reasons = _newest(folder, until)
    return state, reasons


def _newest(
    folder: Path, until: int | None
) -> tuple[Snapshot | None, SwarmState | None, list[str]]:
    reasons: list[str] = []
    for seq, path in list_snapshots(folder):
        if until is not None and seq > until:
            continue
        try:
            snap, state = load_snapshot(path)
        except ValueError as exc:
            reason = f"{path.name}: ignored: {exc}; it will be rebuilt"
            log.debug("%s", reason)
            reasons.append(reason)
            continue
        return snap, state, reasons
    return None, None, reasons


def load_state(
    log_: EventLog,
    folder: Path | None,
    *,
    until: int | None = None,
) -> tuple[SwarmState, list[str]]:
    """Start from the newest valid snapshot (if any) and fold the log's tail up to ``until``.

    Returns the state and the reasons snapshots were skipped (empty when all was well).

    Raises:
        LogCorrupt: the log's bytes before the snapshot were damaged since it was taken (a file
            log; the same error, file and line, as folding the log from zero would raise).
    """
    snap, state, reasons = _newest(folder, until) if folder else (None, None, [])
    if snap is None or state is None:
        return fold_tail(log_.read(after=0), EMPTY, until), reasons

    def rebuild(reason: str) -> tuple[SwarmState, list[str]]:
        reasons.append(f"snapshot at seq {snap.seq} {reason}; ignored and rebuilt from the log")
        log.debug("%s", reasons[-1])
        return fold_tail(log_.read(after=0), EMPTY, until), reasons

    if state.seq > (last := log_.last_seq()):
        return rebuild(
            f"is ahead of the log (ends at {last}): records after seq {last} are torn or were "
            "lost since it was taken ('swarmlog verify' checks the log)"
        )
    tail: Iterator[Event] | None = None
    if snap.anchor:
        # Read from the snapshot's own event to check that it was folded from this log.
        tail = log_.read(after=state.seq - 1)
        first = next(tail, None)
        if first is None or first.seq != state.seq or anchor_of(first) != snap.anchor:
            return rebuild(f"was folded from another log (this log's event {state.seq} differs)")
    if isinstance(log_, Fingerprinted):
        # The tail alone is read from here on: check that what came before it is intact.
        foreign = log_.check_prefix(state.seq, snap.marks)
        if foreign:
            return rebuild(f"was folded from another log ({foreign})")
    return fold_tail(
        tail if tail is not None else log_.read(after=state.seq), state, until
    ), reasons


def fold_tail(
    events: Iterable[Event | EventBase], state: SwarmState, until: int | None = None
) -> SwarmState:
    """Fold ``events`` into ``state``, stopping after seq ``until``."""
    for event in events:
        if until is not None and event.seq > until:
            break
        state = apply(state, event)
    return state
