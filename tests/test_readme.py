"""The README's promises: its Python quickstart runs, and its first screen has what it must."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_python_blocks_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert blocks
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for block in blocks:
            exec(compile(block, str(README), "exec"), {})
    finally:
        os.chdir(cwd)
    assert capsys.readouterr().out.strip() == "2 submitted"


def test_the_first_screen_gives_the_two_commands_and_what_to_open() -> None:
    first_screen = "\n".join(README.read_text().splitlines()[:30])
    for needle in ("make demo", "make test", "memory/team-state.md", "memory/report.md", "alerts/"):
        assert needle in first_screen


def _readme_commands() -> list[list[str]]:
    """Each ``swarmlog ...`` command line the README shows in code (blocks and inline), as tokens
    up to the end of the command (a comment, ``&&``, ``|``, the end of the code)."""
    text = README.read_text()
    code = re.findall(r"```.*?```", text, re.DOTALL)
    code += re.findall(r"`[^`\n]+`", re.sub(r"```.*?```", "", text, flags=re.DOTALL))
    out = []
    for snippet in code:
        for m in re.finditer(r"(?<![\w/.-])swarmlog((?: [^\s`#&|;]+)+)", snippet):
            out.append(m.group(1).split())
    return out


def test_every_command_and_option_the_readme_names_exists() -> None:
    import argparse

    from swarmlog.cli import build_parser

    def subs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                return dict(action.choices)
        return {}

    def options(parser: argparse.ArgumentParser) -> set[str]:
        return {o for a in parser._actions for o in a.option_strings}

    commands = _readme_commands()
    assert len(commands) > 20
    for tokens in commands:
        parser, after_option = build_parser(), False
        line = f"swarmlog {' '.join(tokens)}"
        for raw in tokens:
            tok = raw.strip("[]")
            if tok.startswith("-"):
                assert tok.split("=")[0] in options(parser), f"{line}: no option {tok}"
                after_option = True
            elif tok in subs(parser):
                parser, after_option = subs(parser)[tok], False
            elif tok.isupper():  # a placeholder: swarmlog COMMAND --help
                after_option = False
            else:  # a value: of the option before it, or a command's positional argument
                assert after_option or not subs(parser), f"{line}: no command {tok!r}"
                after_option = False


def test_the_replay_time_in_the_readme_is_inside_the_example_night(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from swarmlog.cli import main
    from tests.cli_helpers import copy_example_night

    until = re.search(r"swarmlog replay --until (\S+)", README.read_text())
    assert until
    ws = copy_example_night(tmp_path / "ws")
    out = tmp_path / "then"
    assert main(["replay", "--dir", str(ws), "--until", until.group(1), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert not said.startswith("state at seq 0 "), said  # before the night: nothing to show


def test_the_files_the_readme_names_exist() -> None:
    root = README.parent
    named = set(re.findall(r"`((?:tests|swarmlog|bench)/[\w/.]+\.py)`", README.read_text()))
    named |= set(re.findall(r"\]\(([\w./-]+)\)", README.read_text()))
    assert named
    for path in sorted(named):
        assert (root / path).exists(), path


def test_the_toml_examples_load_and_agree_with_the_ollama_command() -> None:
    import tomllib

    from swarmlog.config import parse_config

    text = README.read_text()
    blocks = re.findall(r"```toml\n(.*?)```", text, re.DOTALL)
    assert len(blocks) >= 4
    for block in blocks:
        parse_config(tomllib.loads(block), where="README.md")
    # "keep `parallel` in the profile equal to OLLAMA_NUM_PARALLEL": the example must do so.
    slots = re.search(r"OLLAMA_NUM_PARALLEL=(\d+) \S+ \S+ ollama serve", text)
    assert slots
    ollama = [b for b in blocks if "11434" in b]
    assert ollama
    for block in ollama:
        for name, profile in tomllib.loads(block)["models"].items():
            assert profile.get("parallel", int(slots.group(1))) == int(slots.group(1)), name


def test_every_option_the_readme_mentions_is_in_some_help() -> None:
    import argparse

    from swarmlog.cli import build_parser

    known: set[str] = set()

    def walk(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            known.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                for child in action.choices.values():
                    walk(child)

    walk(build_parser())
    mentioned = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", README.read_text()))
    assert len(mentioned) > 10
    assert sorted(mentioned - known) == []
