"""Post-mortems from the log: replay to a moment, explain a task, verify every recorded decision.

Also the renderer's loop (``render_once`` and ``follow``), since both are "fold the log, render,
write" with snapshots.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import jinja2
import msgspec

from swarmlog.errors import UsageError
from swarmlog.events import (
    CheckpointWritten,
    Event,
    MessageRejected,
    MessageSent,
    TaskRouted,
    kind_of,
)
from swarmlog.log import EventLog, FileLog
from swarmlog.log.protocol import Fingerprinted
from swarmlog.render import fmt_ts, plain_line, render_all, write_outputs
from swarmlog.runtime.doorbell import wakeups
from swarmlog.snapshot import (
    anchor_at,
    anchor_of,
    list_snapshots,
    load_snapshot,
    load_state,
    write_snapshot,
)
from swarmlog.state import EMPTY, SwarmState, apply, digests, state_digest
from swarmlog.workspace import Workspace

__all__ = [
    "CHECK_MODULES",
    "Check",
    "Mismatch",
    "explain",
    "explain_events",
    "follow",
    "load_check_modules",
    "parse_until",
    "register_check",
    "register_fold_check",
    "render_once",
    "state_until",
    "verify",
]

log = logging.getLogger(__name__)

Check = Callable[[SwarmState, Event], str | None]

# Modules that register re-deriving checks when imported (``--verify`` imports each that exists).
CHECK_MODULES: list[str] = ["swarmlog.routing.verify", "swarmlog.team.verify"]


class Mismatch(msgspec.Struct, frozen=True):
    """One disagreement found by ``verify``."""

    seq: int
    what: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.what}"


class _FoldCheck:
    """A check with its own fold: ``state`` is that fold's state just before each event."""

    def __init__(self, fold: Callable[[Any, Event], Any], initial: Any, check: Any) -> None:
        self.fold = fold
        self.initial = initial
        self.check = check


_CHECKS: dict[str, list[Check]] = {}
_FOLD_CHECKS: dict[str, list[_FoldCheck]] = {}


def register_check(kind: str, check: Check) -> Callable[[], None]:
    """Re-derive events of ``kind`` during ``--verify``.

    ``check(state, event)`` gets the ``SwarmState`` folded up to the event before and returns a
    description of the mismatch, or None when the recorded event is what it derives. Returns a
    function that unregisters the check.
    """
    _CHECKS.setdefault(kind, []).append(check)
    return lambda: _CHECKS[kind].remove(check)


def register_fold_check(
    kind: str,
    fold: Callable[[Any, Event], Any],
    initial: Any,
    check: Callable[[Any, Event], str | None],
) -> Callable[[], None]:
    """Like ``register_check`` with a private fold (e.g. the router's statistics).

    ``fold(state, event)`` sees every event from ``initial``; ``check(state, event)`` runs on
    events of ``kind`` with the fold's state just before them.
    """
    entry = _FoldCheck(fold, initial, check)
    _FOLD_CHECKS.setdefault(kind, []).append(entry)
    return lambda: _FOLD_CHECKS[kind].remove(entry)


def load_check_modules() -> list[str]:
    """Import every module in ``CHECK_MODULES`` that exists; return those imported."""
    loaded = []
    for name in CHECK_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # not installed / not written yet
            raise
        loaded.append(name)
    return loaded


# Verify


def verify(
    events: Iterable[Event],
    snapshot_folder: Path | None = None,
    *,
    until_seq: int | None = None,
    until_ts: float | None = None,
) -> list[Mismatch]:
    """Fold from zero; compare with snapshots and checkpoints; run every registered check.

    A snapshot that cannot be read is reported too (it would be ignored at start-up). With
    ``until_seq`` / ``until_ts`` the fold stops after the last event at or before it; snapshots
    past that point are not compared (they are not "past the log's end").
    """
    snaps: dict[int, dict[str, str]] = {}
    problems: list[Mismatch] = []
    for seq, path in list_snapshots(snapshot_folder) if snapshot_folder else []:
        try:
            snap, _state = load_snapshot(path)
        except ValueError as exc:
            problems.append(Mismatch(seq, f"snapshot {path.name} unusable: {exc}"))
            continue
        snaps[seq] = snap.digests
    fold_states = {
        id(fc): fc.initial for entries in _FOLD_CHECKS.values() for fc in entries
    }  # fmt: skip
    all_fold_checks = [fc for entries in _FOLD_CHECKS.values() for fc in entries]
    state = EMPTY
    last = 0
    cut = False  # stopped at --until, not at the log's end
    for event in events:
        if (until_seq is not None and event.seq > until_seq) or (
            until_ts is not None and event.ts > until_ts
        ):
            cut = True
            break
        kind = kind_of(event)
        for check in _CHECKS.get(kind, ()):
            problems.extend(_run(check, state, event))
        for fc in _FOLD_CHECKS.get(kind, ()):
            problems.extend(_run(fc.check, fold_states[id(fc)], event))
        if isinstance(event, CheckpointWritten) and event.state_digest:
            expected = state_digest(state)
            if event.state_digest != expected:
                problems.append(
                    Mismatch(
                        event.seq,
                        f"checkpoint {event.checkpoint_id} records state digest "
                        f"{event.state_digest[:12]}… but the log folds to {expected[:12]}… "
                        f"at seq {state.seq}",
                    )
                )
        for fc in all_fold_checks:
            fold_states[id(fc)] = fc.fold(fold_states[id(fc)], event)
        state = apply(state, event)
        last = event.seq
        if event.seq in snaps:
            problems.extend(_compare(snaps.pop(event.seq), state))
    for seq in sorted(snaps):
        if not cut:
            problems.append(
                Mismatch(seq, f"snapshot at seq {seq} is past the log's end (seq {last})")
            )
    return sorted(problems, key=lambda m: m.seq)


def _run(check: Callable[[Any, Event], str | None], state: Any, event: Event) -> list[Mismatch]:
    try:
        what = check(state, event)
    except Exception as exc:  # a broken check is a finding, not a crash of the post-mortem
        what = f"check {getattr(check, '__name__', check)!s} raised {type(exc).__name__}: {exc}"
    return [Mismatch(event.seq, f"{kind_of(event)}: {what}")] if what else []


def _compare(recorded: dict[str, str], state: SwarmState) -> list[Mismatch]:
    now = digests(state)
    bad = [name for name in sorted(now) if name != "state" and recorded.get(name) != now[name]]
    if not bad and recorded.get("state") == now["state"]:
        return []
    names = ", ".join(bad) or "state"
    return [Mismatch(state.seq, f"snapshot digest differs from the fold for: {names}")]


# Replay to a moment


def parse_until(text: str) -> tuple[int | None, float | None]:
    """Parse ``--until``: a seq (digits) or a UTC time (ISO 8601); returns (seq, ts)."""
    text = text.strip()
    if text.isdecimal():  # not isdigit: it takes "²" too, which int() refuses
        return int(text), None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError(
            f"--until {text!r} is neither a seq nor a time; give e.g. 1200 or 2026-01-28T03:45:00Z"
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return None, when.timestamp()


def state_until(
    log_: EventLog,
    *,
    seq: int | None = None,
    ts: float | None = None,
    snapshot_folder: Path | None = None,
) -> tuple[SwarmState, list[str]]:
    """Return the state at ``seq`` (or after the last event at or before ``ts``).

    With ``snapshot_folder`` the fold starts from the newest usable snapshot; the result is the
    same as folding from zero.
    """
    if ts is None:
        return load_state(log_, snapshot_folder, until=seq)
    state, reasons = EMPTY, []
    if snapshot_folder is not None:
        # The newest snapshot whose time is not past ``ts``.
        for snap_seq, path in list_snapshots(snapshot_folder):
            try:
                _snap, snap_state = load_snapshot(path)
            except ValueError as exc:
                reasons.append(f"{path.name}: ignored: {exc}")
                continue
            if snap_state.ts <= ts and snap_seq <= log_.last_seq():
                # As load_state: damage before the snapshot fails here (LogCorrupt), not hidden.
                if isinstance(log_, Fingerprinted) and (
                    other := log_.check_prefix(snap_seq, _snap.marks)
                ):
                    reasons.append(f"{path.name}: ignored: {other}")
                    continue
                state = snap_state
                break
    for event in log_.read(after=state.seq):
        if event.ts > ts:
            break
        state = apply(state, event)
    return state, reasons


# Explain


def explain(events: Iterable[Event], task_id: str) -> Iterator[str]:
    """Yield one line per event in a task's story: seq, UTC time, kind, what happened.

    Each line is plain text for a terminal: what agents and models wrote (names, ids, errors)
    loses its control characters and escape sequences (``plain_line``)."""
    for e, story in explain_events(events, task_id):
        yield f"{e.seq:>7}  {_when(e.ts)}  {kind_of(e):<20} {plain_line(story)}"


def _when(ts: float) -> str:
    """The event's UTC time, or the raw number when no date can hold it (an odd ``ts``)."""
    try:
        return fmt_ts(ts)
    except (OverflowError, ValueError, OSError):
        return f"{ts!r:<19}"


def explain_events(events: Iterable[Event], task_id: str) -> Iterator[tuple[Event, str]]:
    """Yield each event in a task's story with what happened, in words (``explain`` without
    the formatting; ``replay --explain --json`` prints these as objects)."""
    related_seqs: set[int] = set()
    # A message names the task when the id stands as a word of its own: 'T1' is not in
    # 'T10' or 'task-T1', and a one-letter id does not match every message with that letter.
    named = re.compile(rf"(?<![\w-]){re.escape(task_id)}(?![\w-])")
    for e in events:
        line = _story(e, task_id, named, related_seqs)
        if line is not None:
            related_seqs.add(e.seq)
            yield e, line


def _story(e: Event, task_id: str, named: re.Pattern[str], related: set[int]) -> str | None:
    fields = msgspec.structs.asdict(e)
    mine = (
        fields.get("task_id") == task_id
        or task_id in fields.get("task_ids", ())
        or bool(related.intersection(fields.get("evidence", ())))
    )
    if isinstance(e, MessageSent | MessageRejected):
        text = f"{e.content} {getattr(e, 'context', '')}"
        if not named.search(text):
            return None
        verdict = f" REJECTED ({e.reason})" if isinstance(e, MessageRejected) else ""
        return f"{e.sender} -> {e.to} {e.type}/{e.priority}{verdict}: {_one_line(e.content)}"
    if not mine:
        return None
    if isinstance(e, TaskRouted):
        scores = "; ".join(
            f"{c.model} score={c.score:g} expected={c.expected_s:g}s"
            + ("" if c.eligible else f" ineligible ({c.reason})")
            for c in e.candidates
        )
        why = f" ({e.reason})" if e.reason else ""
        return f"-> {e.model}{why}" + (f"; candidates: {scores}" if scores else "")
    skip = {"seq", "ts", "run", "key", "task_id", "candidates", "output"}
    parts = [
        f"{k}={_one_line(v if isinstance(v, str) else msgspec.json.encode(v).decode())}"
        for k, v in fields.items()
        if k not in skip and v not in ("", (), {}, None, 0, 0.0)
    ]
    return " ".join(parts)


def _one_line(text: str, width: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# The renderer


def render_once(
    ws: Workspace,
    env: jinja2.Environment,
    *,
    snapshots: bool = True,
    log: EventLog | None = None,
) -> tuple[SwarmState, list[str], list[str]]:
    """Fold the log (from the newest snapshot), render every file, write the changed ones.

    Writes a snapshot of the final state (a clean shutdown). Returns the state, the changed
    paths and the reasons any snapshot was ignored. ``log`` (closed here) defaults to the
    workspace's file log.
    """
    log_ = log if log is not None else FileLog(ws.events, create=False)
    try:
        state, reasons = load_state(log_, ws.snapshots if snapshots else None)
        anchor = anchor_at(log_, state.seq) if snapshots else ""
    finally:
        log_.close()
    changed = write_outputs(ws, render_all(state, env))
    if snapshots and state.seq:
        write_snapshot(ws.snapshots, state, anchor=anchor, log=log_)
    return state, changed, reasons


def follow(
    ws: Workspace,
    env: jinja2.Environment,
    *,
    stop: threading.Event,
    snapshot_every: int = 10_000,
    on_render: Callable[[SwarmState, list[str]], None] | None = None,
    step_ms: int = 5,
    poll_s: float = 0.5,
    log: EventLog | None = None,
) -> SwarmState:
    """Keep the rendered files current until ``stop`` is set; snapshot every N events and at exit.

    Reads with its own cursor and renders once per batch of new events (not once per event):
    the same doorbell-plus-offset scheme as ``FileLog.subscribe``. ``log`` (closed here) defaults
    to the workspace's file log.
    """
    log_ = log if log is not None else FileLog(ws.events, create=False)
    try:
        state, reasons = load_state(log_, ws.snapshots)
        for reason in reasons:  # 'render' prints them; the renderer of a run logs them
            logging.getLogger(__name__).warning("%s", reason)
        reader = log_.reader(after=state.seq)
        last_snap = state.seq
        anchor = ""  # of the newest event folded here
        changed = write_outputs(ws, render_all(state, env))
        if on_render:
            on_render(state, changed)
        for _rang in wakeups(log_, stop=stop, step_ms=step_ms, poll_s=poll_s):
            batch: list[Event] = []
            while more := reader.poll():
                batch.extend(more)
            if batch:
                for event in batch:
                    state = apply(state, event)
                anchor = anchor_of(batch[-1])
                changed = write_outputs(ws, render_all(state, env))
                if state.seq - last_snap >= snapshot_every:
                    write_snapshot(ws.snapshots, state, anchor=anchor, log=log_)
                    last_snap = state.seq
                if on_render:
                    on_render(state, changed)
            if stop.is_set():
                break
    finally:
        log_.close()
    if state.seq and state.seq != last_snap:
        write_snapshot(ws.snapshots, state, anchor=anchor, log=log_)
    return state
