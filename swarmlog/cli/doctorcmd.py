"""Sub-commands around the night: ``doctor`` before it, ``archive`` after it."""

from __future__ import annotations

import argparse
from functools import partial
from typing import TYPE_CHECKING

from swarmlog.cli.common import (
    add_command,
    emit_json,
    log_target,
    non_negative_number,
    open_log,
    positive_seconds,
    wants_json,
    workspace,
)
from swarmlog.defaults import MIN_DISK_GB

if TYPE_CHECKING:
    from swarmlog.doctor import Check

__all__ = ["format_checks", "register"]

_MARK = {"pass": "pass", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "doctor",
        "the pre-flight checklist: servers, models, keep-alive, slots, key, disk, inotify, clock",
        "swarmlog doctor --min-disk-gb 20",
        description="Check everything the seed guide's pre-flight list asks for before an "
        "overnight run: each model server reachable; each model present and loaded (or "
        "loadable within the VRAM); keep-alive >= 60m; parallel slots consistent; the "
        "Director's API key present (never printed); workspace writable; disk free; inotify "
        "limits; clock sane; log verify clean. Exits 1 when any check fails.",
    )
    p.add_argument(
        "--min-disk-gb",
        type=non_negative_number,
        default=MIN_DISK_GB,
        help=f"free disk space required (default {MIN_DISK_GB:g} GB)",
    )
    p.add_argument(
        "--timeout",
        type=positive_seconds,
        default=2.0,
        help="seconds to wait for each model server (default 2)",
    )
    p.set_defaults(func=cmd_doctor)

    p = add_command(
        sub,
        "archive",
        "close a finished run: seal the log segment and render, ready to commit",
        "swarmlog archive && git add memory alerts && git commit -m 'night 1'",
        description="Seal the active log segment (fsync, read-only: it never changes again), "
        "write a fresh render and snapshot, and check the log. Refuses while a run is open "
        "unless --force. A later 'swarmlog run' appends to a new segment. With a nats:// log "
        "(--log, $SWARMLOG_LOG or [log]) the stream is first copied into memory/events.",
    )
    p.add_argument("--force", action="store_true", help="seal even though a run is still open")
    p.set_defaults(func=cmd_archive)


def format_checks(checks: list[Check]) -> list[str]:
    """Return the checklist as text lines: a table, the fixes under failures, a summary."""
    width = max((len(c.check) for c in checks), default=10)
    lines = []
    for c in checks:
        lines.append(f"{_MARK[c.status]:<5} {c.check:<{width}}  {c.detail}")
        if c.fix and c.status in ("fail", "warn"):
            lines.append(f"{'':<5} {'':<{width}}  fix: {c.fix}")
    counts = {s: sum(c.status == s for c in checks) for s in ("pass", "warn", "fail", "skip")}
    verdict = "not ready" if counts["fail"] else "ready"
    lines.append(
        f"doctor: {verdict}: {counts['pass']} pass, {counts['warn']} warn, "
        f"{counts['fail']} fail, {counts['skip']} skipped"
    )
    return lines


def cmd_doctor(args: argparse.Namespace) -> int:
    from swarmlog.doctor import run_checks
    from swarmlog.log.select import is_nats_url

    selected = log_target(args)
    checks = run_checks(
        workspace(args),
        min_disk_gb=args.min_disk_gb,
        timeout_s=args.timeout,
        open_log=partial(open_log, args) if is_nats_url(selected) else None,
    )
    if wants_json(args):
        for c in checks:
            emit_json(c)
    else:
        for line in format_checks(checks):
            print(line)
    return 1 if any(c.status == "fail" for c in checks) else 0


def cmd_archive(args: argparse.Namespace) -> int:
    from swarmlog.archive import archive
    from swarmlog.log.select import archive_stream, is_nats_url

    ws = workspace(args)
    if is_nats_url(target := log_target(args)):  # a team on JetStream: copy the stream here first
        copied = archive_stream(target, ws.events)
        if not wants_json(args):
            print(f"copied {copied} new event(s) from the stream into {ws.events}")
    done = archive(ws, force=args.force)
    if wants_json(args):
        emit_json(done)
        return 0
    if done.sealed:
        print(f"sealed {done.sealed} (read-only; it never changes again)")
    else:
        print("nothing to seal: every segment already is")
    what = f"run {done.run} ({done.outcome or 'no outcome'})" if done.run else "no run in the log"
    print(
        f"{what}: {done.segments} segment(s), last seq {done.last_seq}; "
        f"rendered {len(done.rendered)} changed file(s)"
    )
    print(f"commit the night: {done.hint}")
    return 0
