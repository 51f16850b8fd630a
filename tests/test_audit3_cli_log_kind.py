"""`swarmlog log --kind ''` (an empty variable in a script, say) printed every event, as if no
filter had been asked for. Now a usage error naming the empty value."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_helpers import one_error_line
from tests.cli_helpers import swarmlog_in as _swarmlog


@pytest.mark.parametrize("value", ["", ",", " "])
def test_log_kind_naming_no_kind_is_a_usage_error(tmp_path: Path, value: str) -> None:
    ws = tmp_path / "night"
    assert _swarmlog(ws, "init", "--no-detect").returncode == 0
    assert _swarmlog(ws, "note", "hello").returncode == 0
    done = _swarmlog(ws, "log", "--kind", value)
    assert done.returncode == 2, done
    assert done.stdout == ""
    err = one_error_line(done.stderr)
    assert f"--kind {value!r}" in err, err


def test_log_kind_with_a_trailing_comma_still_filters(tmp_path: Path) -> None:
    ws = tmp_path / "night"
    assert _swarmlog(ws, "init", "--no-detect").returncode == 0
    assert _swarmlog(ws, "note", "hello").returncode == 0
    done = _swarmlog(ws, "log", "--kind", "note,")
    assert done.returncode == 0, done
    assert "text=hello" in done.stdout
