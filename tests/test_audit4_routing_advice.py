"""When no model can take a task, the one error line ends with what to do about the filters that
stopped the models. It always said 'add a capable [models.*] profile or wait for a circuit to
close', also for a 1 MB prompt that no context holds, where neither helps."""

from __future__ import annotations

from pathlib import Path

from tests.cli_helpers import one_error_line, swarmlog_in

CONFIG = """
[models.small]
endpoint = "http://127.0.0.1:9/v1"
model = "m1"
context_length = 8192
capabilities = ["lint"]
"""


def test_no_route_says_what_would_let_a_model_take_it(tmp_path: Path) -> None:
    (tmp_path / "swarmlog.toml").write_text(CONFIG)
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("x" * 1_000_000)
    done = swarmlog_in(tmp_path, "route", "--task-kind", "lint", "--prompt-file", str(prompt))
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert "exceed context 8192" in line, line
    assert line.rstrip().endswith("shorten the prompt or raise a profile's context_length"), line
    assert "circuit" not in line

    done = swarmlog_in(tmp_path, "route", "--capabilities", "security")
    line = one_error_line(done.stderr)
    assert "small: lacks capability security" in line
    assert line.rstrip().endswith("list the capability in a [models.*] profile's capabilities")
