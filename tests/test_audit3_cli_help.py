"""Every option in `swarmlog COMMAND --help` says what it does and, where it has one, its default:
`append --sync` and `note TEXT` had no help at all, and the defaults of `render --snapshot-every`,
`route --task-kind/--task-id`, `doctor --timeout` and `watch --interval` were not stated."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from swarmlog.cli import build_parser
from tests.cli_helpers import REPO

# The commands of swarmlog/cli/runcmds.py are another module's to word.
NOT_HERE = {"run", "agent", "scheduler", "monitor", "archive"}


def _commands() -> dict[str, argparse.ArgumentParser]:
    out: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        for sub in subs:
            for child, sp in sub.choices.items():
                walk(sp, f"{name} {child}".strip())
        if name and not subs and name.split()[0] not in NOT_HERE:
            out[name] = parser

    walk(build_parser(), "")
    return out


COMMANDS = _commands()


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_option_is_explained_with_its_default(name: str) -> None:
    for action in COMMANDS[name]._actions:
        if action.dest == "help":
            continue
        what = "/".join(action.option_strings) or action.dest
        assert action.help, f"swarmlog {name}: {what} has no help"
        default = action.default
        if default in (None, False, "", [], argparse.SUPPRESS):
            continue
        assert "default" in action.help.lower(), f"swarmlog {name}: {what}: default {default!r}"


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["append"], ["--sync {always,batch,none}", "always (the default)", "--expect-seq N"]),
        (["note"], ["the note's text"]),
        (["log"], ["--after SEQ", "comma-separated"]),
        (["render"], ["default 10000"]),
        (["route"], ["default general", "default cli-task"]),
        (["doctor"], ["default 2"]),
        (["watch"], ["default 2"]),
    ],
)
def test_the_help_text_a_user_reads(argv: list[str], needles: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "swarmlog", *argv, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done
    for needle in needles:
        assert needle in done.stdout, (needle, done.stdout)
