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
