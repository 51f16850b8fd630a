"""`swarmlog route` given both --prompt and --prompt-file: it silently routed on the file's text
and dropped the prompt the user typed. Now a usage error on one line, before anything is read."""

from __future__ import annotations

from pathlib import Path

from tests.cli_helpers import one_error_line
from tests.cli_helpers import swarmlog_in as _swarmlog


def test_route_refuses_both_prompt_and_prompt_file(tmp_path: Path) -> None:
    ws = tmp_path / "night"
    assert _swarmlog(ws, "init", "--no-detect").returncode == 0
    diff = tmp_path / "diff.txt"
    diff.write_text("x = 1\n" * 2000)
    done = _swarmlog(ws, "route", "--prompt", "fix the typo", "--prompt-file", str(diff))
    assert done.returncode == 2, done
    err = one_error_line(done.stderr)
    assert "--prompt" in err and "--prompt-file" in err and "not both" in err, err
    # Each alone still routes.
    assert _swarmlog(ws, "route", "--prompt", "fix the typo").returncode == 0
    assert _swarmlog(ws, "route", "--prompt-file", str(diff)).returncode == 0
