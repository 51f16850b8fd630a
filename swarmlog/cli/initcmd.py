"""``swarmlog init``: detect servers and hardware, create a workspace, never overwrite anything."""

from __future__ import annotations

import argparse
import errno
import os
from pathlib import Path
from urllib.parse import urlsplit

from swarmlog.cli.common import add_command, emit_json, positive_seconds, wants_json, workspace
from swarmlog.defaults import DEFAULT_OLLAMA_URL, DETECT_TIMEOUT_S
from swarmlog.errors import SwarmlogError, UsageError
from swarmlog.workspace import Workspace, WriteError

__all__ = ["init_workspace", "register"]

GITATTRIBUTES = """\
# Written by 'swarmlog init': keep run histories readable in diffs.
memory/events/*.ndjson linguist-generated=true -diff
memory/snapshots/** binary
memory/*.md linguist-generated=true
alerts/*.md linguist-generated=true
"""

# Process-local files that change on every append or every run: not part of a night's history.
MEMORY_GITIGNORE = """\
# Written by 'swarmlog init': the log's lock and sync watermark and the processes' own output
# change all the time and are not history; the segments, snapshots and Markdown are.
events/.lock
events/.synced
logs/
"""

STARTER_CONFIG = """\
# swarmlog.toml: models, agents, limits, escalation thresholds and alert channels.
# 'swarmlog config check' validates this file; see README.md for every key.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "init",
        "create swarmlog.toml, memory/ and alerts/ (never overwrites)",
        "swarmlog init --dir ~/night-1 --openai http://127.0.0.1:8000/v1",
        description="Create swarmlog.toml, memory/ and alerts/ and a .gitattributes; never "
        "overwrites. The config is written from what can be detected: Ollama's models (loaded "
        "or not), OpenAI-compatible servers named with --openai, GPUs and RAM. What could not be "
        "detected is printed, and the config still loads and routes.",
    )
    p.add_argument(
        "--ollama",
        metavar="URL",
        default=DEFAULT_OLLAMA_URL,
        help=f"where to look for Ollama (default {DEFAULT_OLLAMA_URL})",
    )
    p.add_argument(
        "--openai",
        metavar="URL",
        action="append",
        default=[],
        help="an OpenAI-compatible server (vLLM, llama.cpp, LM Studio) to ask; repeatable",
    )
    p.add_argument(
        "--no-detect",
        action="store_true",
        help="detect nothing: write the seed's default config",
    )
    p.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DETECT_TIMEOUT_S,
        help=f"seconds to wait for each server (default {DETECT_TIMEOUT_S:g})",
    )
    p.set_defaults(func=cmd_init)


def init_workspace(ws: Workspace, config_text: str = STARTER_CONFIG) -> list[str]:
    """Create what is missing; return the paths created.

    Each file appears whole or not at all (written aside, then linked into place), so a disk
    that fills up mid-write leaves no truncated config that a later ``init`` would keep. Raises
    ``WriteError`` naming the path and what to do.
    """
    created = []
    for folder in (ws.root, ws.memory, ws.events, ws.alerts):
        if not folder.exists():
            try:
                folder.mkdir(parents=True)
            except OSError as exc:
                raise WriteError(folder, exc, "create") from exc
            created.append(str(folder))
    files = (
        (ws.config, config_text),
        (ws.root / ".gitattributes", GITATTRIBUTES),
        (ws.memory / ".gitignore", MEMORY_GITIGNORE),
    )
    for path, text in files:
        if not path.exists() and _create_whole(path, text.encode()):
            created.append(str(path))
    return created


_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


def _create_whole(path: Path, data: bytes) -> bool:
    """Create ``path`` holding ``data`` unless it exists (never overwriting); True if created."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        try:
            with open(tmp, "xb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)  # fails if something appeared there meanwhile: never overwrite
            except FileExistsError:
                raise
            except OSError as exc:  # a file system without hard links (FAT, some FUSE mounts)
                if exc.errno not in _NO_LINKS or path.exists():
                    raise
                os.rename(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except FileExistsError:
        return False
    except OSError as exc:
        raise WriteError(path, OSError(exc.errno, exc.strerror), "create") from exc
    return True


def _check_url(option: str, url: str, example: str) -> None:
    """A server address must be an http(s) URL with a host: anything else is a usage error."""
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        ok = False
    if not ok:
        raise UsageError(
            f"{option} {url!r} is not a URL; give the server's address, e.g. {example}"
        )


def cmd_init(args: argparse.Namespace) -> int:
    from swarmlog.initconfig import Detection, detect, render_config

    for url in args.openai:
        _check_url("--openai", url, "http://127.0.0.1:8000/v1")
    if args.ollama:  # --ollama '' skips Ollama
        _check_url("--ollama", args.ollama, DEFAULT_OLLAMA_URL)
    ws = workspace(args)  # refuses a file there
    missing: tuple[str, ...] = ()
    config_text = STARTER_CONFIG
    if not ws.config.exists():
        if args.no_detect:
            det = Detection(missing=("anything: detection skipped (--no-detect)",))
        else:
            det = detect(
                ollama_url=args.ollama or None, openai_urls=args.openai, timeout_s=args.timeout
            )
        missing = det.missing
        config_text = render_config(det)
    try:
        created = init_workspace(ws, config_text)
    except WriteError as exc:
        where = "" if exc.path == ws.root else f" ({exc.path})"
        todo = exc.message.partition("; ")[2]
        raise SwarmlogError(
            f"cannot create the workspace {ws.root}: {exc.strerror}{where}; {todo}"
        ) from exc
    if wants_json(args):
        emit_json({"workspace": str(ws.root), "created": created, "not_detected": missing})
    else:
        for path in created:
            print(f"created {path}")
        for line in missing:
            print(f"not detected: {line}")
        if not created:
            print(f"{ws.root} is already a swarmlog workspace; nothing changed")
        elif str(ws.config) in created:
            print(f"next: review {ws.config}, then run 'swarmlog doctor'")
    return 0
