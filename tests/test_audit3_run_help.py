"""Every option of the commands that run the team (``run``, ``agent``, ``scheduler``,
``monitor``) states its default in ``--help``: ``monitor --interval`` (5 s) did not."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from cli_helpers import run

from swarmlog.cli import build_parser

HERE = ("run", "agent", "scheduler", "monitor")


def _parser(name: str) -> argparse.ArgumentParser:
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    parser: argparse.ArgumentParser = sub.choices[name]
    return parser


@pytest.mark.parametrize("name", HERE)
def test_each_option_states_its_default(name: str) -> None:
    for action in _parser(name)._actions:
        if action.dest == "help" or action.required or action.nargs == 0:
            continue  # a flag, or one that must be given
        what = "/".join(action.option_strings) or action.dest
        if not action.option_strings and action.nargs != "?":
            continue
        assert action.help, f"swarmlog {name}: {what} has no help"
        assert "default" in action.help.lower(), f"swarmlog {name}: {what}: no default stated"


@pytest.mark.parametrize(
    ("name", "needles"),
    [
        ("monitor", ["--interval SECONDS", "(default 5)"]),
        ("run", ["(default 0.05)", "(default: that count, else 1)", "default: the servers in"]),
        ("agent", ["(default: the role)"]),
    ],
)
def test_help_text_says_the_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, needles: list[str]
) -> None:
    assert run(tmp_path, name, "--help") == 0
    text = " ".join(capsys.readouterr().out.split())
    for needle in needles:
        assert needle in text, text
