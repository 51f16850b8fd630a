"""Sub-commands over the log itself: append, note, log, verify, repair."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import msgspec

from swarmlog.cli.common import (
    actor_identity,
    add_command,
    emit_json,
    iso,
    open_log,
    wants_json,
    workspace,
)
from swarmlog.errors import EventDecodeError, LogCorrupt, LogError, SwarmlogError, UsageError
from swarmlog.events import (
    ALL_KINDS,
    ENCODER,
    Event,
    EventBase,
    MessageSent,
    Note,
    decode,
    kind_of,
)
from swarmlog.text import plain_line

if TYPE_CHECKING:
    from types import FrameType

    from swarmlog.team.messaging import AppendableLog

__all__ = ["format_event", "parse_event", "register"]

_ENVELOPE = frozenset(EventBase.__struct_fields__)  # seq, ts, run, actor, key
_SUMMARY_WIDTH = 100


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "append",
        "append one event, or one per NDJSON line from stdin",
        """swarmlog append note '{"text": "hello"}'""",
        description="Append events to the log. Each assigned seq is printed only once the event "
        "is durable under the chosen sync policy.\nKinds: " + ", ".join(sorted(ALL_KINDS)),
    )
    p.add_argument("kind", nargs="?", help="event kind, e.g. note, task_submitted")
    p.add_argument("fields", nargs="?", help="the event's fields as a JSON object")
    p.add_argument("--stdin", action="store_true", help="read NDJSON events (each with a kind)")
    p.add_argument(
        "--expect-seq",
        type=int,
        metavar="N",
        help="refuse (exit 3) unless the log ends at seq N (0: an empty log)",
    )
    p.add_argument(
        "--sync",
        choices=["always", "batch", "none"],
        default="always",
        help="always (the default): fsync before each seq is printed; batch: the same, waiting a "
        "millisecond so concurrent writers share one fsync; none: no fsync (a process crash "
        "loses nothing, a power cut may lose the last appends)",
    )
    p.set_defaults(func=cmd_append)

    p = add_command(
        sub, "note", "append an operator's note", "swarmlog note 'rebooted the GPU box'"
    )
    p.add_argument("text", help="the note's text (quote it if it has spaces)")
    p.set_defaults(func=cmd_note)

    p = add_command(sub, "log", "print events", "swarmlog log --kind alert_raised --follow")
    p.add_argument(
        "--after",
        type=int,
        default=0,
        metavar="SEQ",
        help="only events with a seq above SEQ (default 0: from the first)",
    )
    p.add_argument(
        "--kind",
        action="append",
        default=[],
        help="only these kinds: comma-separated, or the option repeated (default: every kind)",
    )
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    p.add_argument(
        "--alerts",
        action="store_true",
        help="only escalations and alerts, as EMERGENCY/ESCALATE/ABORT lines (the seed's grep)",
    )
    p.set_defaults(func=cmd_log)

    p = add_command(sub, "verify", "check every record of the log", "swarmlog verify")
    p.set_defaults(func=cmd_verify)

    p = add_command(
        sub,
        "repair",
        "truncate a torn tail, keeping a copy of what was removed",
        "swarmlog repair",
    )
    p.set_defaults(func=cmd_repair)


def parse_event(obj: Any, *, where: str = "") -> EventBase:
    """Turn a JSON object (with ``kind``) into an event; errors name kind, field, type and value.

    Stricter than reading the log: a key that is not a field of the kind is refused here, while
    the log's decoder ignores it so that logs written by newer versions still decode.
    """
    from swarmlog.cli.eventinput import explain_invalid, show_json, ts_problem, unknown_fields

    prefix = f"{where}: " if where else ""
    if not isinstance(obj, dict):
        raise EventDecodeError(
            f"{prefix}an event must be a JSON object, got {show_json(obj, 60)}; "
            "fix the JSON and retry"
        )
    if "kind" not in obj:
        raise EventDecodeError(
            f'{prefix}no "kind" field; give each event its kind, '
            f'e.g. {{"kind": "note", "text": "…"}}'
        )
    kind = obj["kind"]
    if kind not in ALL_KINDS:
        raise EventDecodeError(
            f"{prefix}unknown event kind {kind!r}; known kinds: {', '.join(sorted(ALL_KINDS))}"
        )
    for field in ("seq",):
        if field in obj:
            raise EventDecodeError(f"{prefix}'{field}' is assigned by the log; remove it")
    obj.setdefault("actor", actor_identity())
    if kind == "message_sent":  # the sender is the appending process (issue 6)
        obj.setdefault("sender", actor_identity())
    try:
        event = decode(ENCODER.encode(obj))
    except msgspec.ValidationError as exc:
        invalid = explain_invalid(kind, obj, exc)
        raise EventDecodeError(f"{prefix}{invalid}; fix the JSON and retry") from exc
    unknown = unknown_fields(kind, obj)
    if unknown:
        raise EventDecodeError(f"{prefix}{unknown}; fix the JSON and retry")
    if event.ts:  # the user's own time: the log is append-only, so refuse one nobody can read
        problem = ts_problem(kind, event.ts, time.time())
        if problem:
            raise EventDecodeError(f"{prefix}{problem}")
    return event


def _load_json(text: str, where: str) -> Any:
    from swarmlog.cli.eventinput import explain_not_json, repeated_key

    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise EventDecodeError(
            f"{where}: not JSON ({explain_not_json(text, exc)}): {text[:60]!r}; fix it and retry"
        ) from exc
    key = repeated_key(text)
    if key is not None:
        raise EventDecodeError(
            f"{where}: the key {key!r} appears twice in one object, and JSON does not say which "
            "counts; keep one and retry"
        )
    return value


def _check_argument(text: str, what: str) -> None:
    """Refuse an argument that is not UTF-8 (the shell passed raw bytes): exit 2, one line."""
    from swarmlog.cli.eventinput import invalid_utf8

    problem = invalid_utf8(text)
    if problem:
        raise UsageError(f"{what} is {problem}; give it as UTF-8 text (nothing was appended)")


def cmd_append(args: argparse.Namespace) -> int:
    if args.expect_seq is not None and args.expect_seq < 0:
        raise UsageError(
            f"--expect-seq must be 0 or more (the seq the log ends at; 0 for an empty log), "
            f"got {args.expect_seq}"
        )
    if args.kind is not None:
        _check_argument(args.kind, "the KIND argument")
    if args.fields is not None:
        _check_argument(args.fields, "the JSON argument")
    log = open_log(args, sync=args.sync)
    if args.stdin:
        if args.kind:
            raise UsageError("give either KIND [JSON] or --stdin, not both")
        return _append_stdin(args, log)
    if not args.kind:
        raise UsageError("append needs KIND [JSON] or --stdin; see 'swarmlog append --help'")
    fields = _load_json(args.fields, "fields") if args.fields else {}
    if not isinstance(fields, dict):
        raise EventDecodeError(
            f"fields must be a JSON object, got {args.fields!r:.60}; fix the JSON and retry"
        )
    event = parse_event({**fields, "kind": args.kind})
    _print_appended(args, _append_one(args, log, event, args.expect_seq))
    return 0


def _append_stdin(args: argparse.Namespace, log: AppendableLog) -> int:
    """Append one event per NDJSON line, each durable before the next is read.

    A bad line stops the command; the lines before it stay appended (their seqs were printed as
    each became durable), and the error says which lines those were.
    """
    expect = args.expect_seq
    first = last = 0  # the line numbers of the first and the last appended event
    for n, raw in enumerate(_stdin_lines(), start=1):
        if not raw.strip():
            continue
        try:
            text = _stdin_text(raw, n)
            event = parse_event(_load_json(text, f"stdin line {n}"), where=f"stdin line {n}")
            stored = _append_one(args, log, event, expect)
        except SwarmlogError as exc:
            raise _stopped_at(exc, n, first, last) from exc
        expect = None if expect is None else stored.seq
        first, last = first or n, n
        _print_appended(args, stored)
    return 0


def _stdin_lines() -> Iterator[bytes | str]:
    """Stdin's lines as bytes where it has them (so a bad byte is found where it is), else text."""
    raw = getattr(sys.stdin, "buffer", None)
    return iter(raw) if raw is not None else iter(sys.stdin)


def _stdin_text(line: bytes | str, n: int) -> str:
    from swarmlog.cli.eventinput import invalid_utf8, utf8_bytes_problem

    problem = utf8_bytes_problem(line) if isinstance(line, bytes) else invalid_utf8(line)
    if problem:
        raise EventDecodeError(f"stdin line {n}: {problem}; send UTF-8 text")
    return line.decode("utf-8") if isinstance(line, bytes) else line


def _stopped_at(exc: SwarmlogError, n: int, first: int, last: int) -> SwarmlogError:
    """``exc`` from stdin line ``n``, saying what was appended before it; same exit code."""
    text = str(exc)
    if not text.startswith(f"stdin line {n}:"):
        text = f"stdin line {n}: {text}"
    if first:
        done = (
            f"lines {first}-{last} were appended (seqs printed above), "
            f"nothing from line {n} on was; send only lines {n} onward again"
        )
    else:
        done = "nothing was appended"
    err = SwarmlogError(f"{text}; {done}")
    err.exit_code = exc.exit_code
    return err


def _append_one(
    args: argparse.Namespace, log: AppendableLog, event: EventBase, expected_seq: int | None
) -> Event:
    """Append one event; a message_sent must pass the team's topology first (issue 6)."""
    if isinstance(event, MessageSent):
        from swarmlog.config import load_config
        from swarmlog.team.messaging import admit
        from swarmlog.team.settings import team_settings

        team = team_settings(load_config(workspace(args).config, missing_ok=True).team)
        return admit(log, event, actor_identity(), settings=team, expected_seq=expected_seq)
    return log.append([event], expected_seq=expected_seq)[0]


def _print_appended(args: argparse.Namespace, event: Event) -> None:
    if wants_json(args):
        emit_json({"seq": event.seq, "kind": kind_of(event)})
    else:
        print(event.seq, flush=True)


def cmd_note(args: argparse.Namespace) -> int:
    _check_argument(args.text, "the note's text")
    if not args.text.strip():
        raise UsageError(
            f"the note's text is empty ({args.text!r}); give it, e.g. "
            "swarmlog note 'rebooted the GPU box'"
        )
    log = open_log(args)
    stored = log.append([Note(text=args.text, actor=actor_identity())])
    _print_appended(args, stored[0])
    return 0


_ALERT_KINDS = {"escalation_raised", "escalation_resolved", "alert_raised", "run_ended"}


def format_event(event: Event) -> str:
    """One human line: seq, UTC time, kind, actor, the other fields compactly."""
    fields = msgspec.structs.asdict(event)
    rest = " ".join(
        f"{k}={_short(v)}"
        for k, v in fields.items()
        if k not in _ENVELOPE and v not in ("", (), {})
    )
    if len(rest) > _SUMMARY_WIDTH:
        rest = rest[: _SUMMARY_WIDTH - 1] + "…"
    return (
        f"{event.seq:>7} {iso(event.ts)} {kind_of(event):<22} {plain_line(event.actor):<10} {rest}"
    )


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else msgspec.json.encode(value).decode()
    return plain_line(text.replace("\n", "⏎"), 40)  # a model's text: no escapes reach the tty


def cmd_log(args: argparse.Namespace) -> int:
    if args.after < 0:
        raise UsageError(f"--after must be a seq, 0 or more, got {args.after}; e.g. --after 120")
    log = open_log(args)
    kinds: set[str] = set()
    for group in args.kind:
        named = {k.strip() for k in group.split(",") if k.strip()}
        if not named:  # e.g. an empty variable in a script: not "every kind"
            raise UsageError(
                f"--kind {group!r} names no kind; give one such as --kind note, or leave --kind "
                "out for every kind"
            )
        kinds |= named
    unknown = kinds - set(ALL_KINDS)
    if unknown:
        raise UsageError(f"unknown kind(s) {', '.join(sorted(unknown))}; see 'swarmlog append -h'")
    if args.alerts:
        kinds = kinds or _ALERT_KINDS
    if not args.follow:
        _print_events(args, log.read(after=args.after), kinds)
        return 0
    # Following ends by Ctrl-C (the KeyboardInterrupt reaches cli.main, which exits 130) or by
    # SIGTERM, which stops it the same way and exits 143 (README, Commands). The file watcher
    # turns any exception a signal handler raises into KeyboardInterrupt, hence the flag.
    terminated: list[int] = []

    def on_term(sig: int, _frame: FrameType | None) -> None:
        terminated.append(sig)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        _print_events(args, log.subscribe(after=args.after), kinds)
    except KeyboardInterrupt:
        if not terminated:
            raise
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _print_events(args: argparse.Namespace, source: Iterable[Event], kinds: set[str]) -> None:
    if args.alerts:
        from swarmlog.escalation.levels import alert_line
    for event in source:
        if kinds and kind_of(event) not in kinds:
            continue
        if args.alerts:
            line = alert_line(event)
            if line and wants_json(args):
                emit_json(_alert_object(event, line))
            elif line:
                print(line, flush=True)
        elif wants_json(args):
            emit_json(event)
        else:
            print(format_event(event), flush=args.follow)


def _alert_object(event: Event, line: str) -> dict[str, Any]:
    """``log --alerts --json``: the greppable line's fields as one object, the line included."""
    return {
        "alert": line.split(" ", 1)[0],  # EMERGENCY, ESCALATE or ABORT
        "seq": event.seq,
        "ts": event.ts,
        "kind": kind_of(event),
        "run": event.run,
        "level": getattr(event, "level", None),
        "rule": getattr(event, "rule", ""),
        "text": getattr(event, "title", "") or getattr(event, "reason", ""),
        "line": line,
    }


def cmd_verify(args: argparse.Namespace) -> int:
    report = open_log(args).verify()
    if wants_json(args):
        emit_json(
            {
                "ok": report.ok,
                "segments": report.segments,
                "records": report.records,
                "last_seq": report.last_seq,
                "torn_tail_bytes": report.torn_tail_bytes,
                "problems": [str(p) for p in report.problems],
            }
        )
    else:
        for problem in report.problems:
            print(problem)
        tail = (
            f"; torn tail of {report.torn_tail_bytes} bytes (run 'swarmlog repair')"
            if report.torn_tail_bytes
            else ""
        )
        verdict = "ok" if report.ok else f"{len(report.problems)} damaged record(s)"
        print(
            f"{verdict}: {report.records} records in {report.segments} segment(s), "
            f"last seq {report.last_seq}{tail}"
        )
    return 0 if report.ok else 1


def cmd_repair(args: argparse.Namespace) -> int:
    try:
        report = open_log(args).repair()
    except LogCorrupt as exc:
        # Say what the refusal means: repair found damage it may not cut.
        raise LogError(
            f"{exc.path}:{exc.line}: {exc.problem}; repair changed nothing "
            "(it only cuts a torn tail at the end); 'swarmlog verify' lists every damaged record"
        ) from exc
    if wants_json(args):
        emit_json(report)
    elif report.removed_bytes:
        print(
            f"removed {report.removed_bytes} bytes from {report.segment}; kept in {report.saved_to}"
        )
    else:
        print("nothing to repair: the log ends on a complete record")
    return 0
