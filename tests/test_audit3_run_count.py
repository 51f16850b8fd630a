"""``[agents.ROLE] count`` in swarmlog.toml runs that many processes for the role; ``run --workers
ROLE=N`` wins where both are given; a count that is not a whole number >= 1 is refused by name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import one_error_line, run

from swarmlog.events import AgentRegistered, ConfigLoaded
from swarmlog.log import FileLog


def _workspace(tmp_path: Path, **counts: str) -> Path:
    """A workspace from 'swarmlog init' with ``count = VALUE`` added to ``[agents.ROLE]``."""
    ws = tmp_path / "w"
    assert run(ws, "init", "--no-detect") == 0
    config = ws / "swarmlog.toml"
    text = config.read_text()
    for role, value in counts.items():
        assert f"[agents.{role}]\n" in text
        text = text.replace(f"[agents.{role}]\n", f"[agents.{role}]\ncount = {value}\n", 1)
    config.write_text(text)
    return ws


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_count_runs_more_workers_and_workers_option_wins(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, builder="3", scout="2")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "swarmlog",
            "--dir",
            str(ws),
            "run",
            "--sim",
            "demo",
            "--workers",
            "scout=1",
        ],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    events = list(FileLog(ws / "memory" / "events", create=False).read())
    agents = {e.agent for e in events if isinstance(e, AgentRegistered)}
    assert {a for a in agents if a.startswith("builder")} == {"builder", "builder-2", "builder-3"}
    assert {a for a in agents if a.startswith("scout")} == {"scout"}  # --workers scout=1 wins
    assert {a for a in agents if a.startswith("inspector")} == {"inspector"}
    (loaded,) = [e for e in events if isinstance(e, ConfigLoaded)]
    assert loaded.config["agents"]["builder"]["count"] == 3  # the record says what ran


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("0", "agents.builder.count = 0"),
        ("2.5", "agents.builder.count = 2.5"),
        ('"3"', "agents.builder.count = '3'"),
        ("true", "agents.builder.count = True"),
    ],
)
def test_a_count_not_a_whole_number_of_at_least_one_is_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, said: str
) -> None:
    ws = _workspace(tmp_path, builder=value)
    capsys.readouterr()
    assert run(ws, "config", "check") == 1
    err = one_error_line(capsys.readouterr().err)
    assert said in err, err
    for night in (["a goal"], ["--sim", "demo"]):
        assert run(ws, "run", *night) == 1
        err = one_error_line(capsys.readouterr().err)
        assert said in err, err
    assert not (ws / "memory" / "logs" / "supervisor.lock").exists()  # nothing started


def test_run_help_says_how_count_and_workers_combine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path, "run", "--help") == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "[agents.ROLE] count" in text
    assert "overrides" in text
