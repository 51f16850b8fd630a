"""``swarmlog init``: create a workspace without ever overwriting anything."""

from __future__ import annotations

import argparse

from swarmlog.cli.common import add_command, emit_json, wants_json, workspace
from swarmlog.workspace import Workspace

__all__ = ["init_workspace", "register"]

GITATTRIBUTES = """\
# Written by 'swarmlog init': keep run histories readable in diffs.
memory/events/*.ndjson linguist-generated=true -diff
memory/snapshots/** binary
memory/*.md linguist-generated=true
alerts/*.md linguist-generated=true
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
        "swarmlog init --dir ~/night-1",
    )
    p.set_defaults(func=cmd_init)


def init_workspace(ws: Workspace, config_text: str = STARTER_CONFIG) -> list[str]:
    """Create what is missing; return the paths created."""
    created = []
    for folder in (ws.root, ws.memory, ws.events, ws.alerts):
        if not folder.exists():
            folder.mkdir(parents=True)
            created.append(str(folder))
    for path, text in ((ws.config, config_text), (ws.root / ".gitattributes", GITATTRIBUTES)):
        if not path.exists():
            path.write_text(text)
            created.append(str(path))
    return created


def cmd_init(args: argparse.Namespace) -> int:
    ws = workspace(args)
    created = init_workspace(ws)
    if wants_json(args):
        emit_json({"workspace": str(ws.root), "created": created})
    else:
        for path in created:
            print(f"created {path}")
        if not created:
            print(f"{ws.root} is already a swarmlog workspace; nothing changed")
    return 0
