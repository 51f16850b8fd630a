"""``route --task-id ""`` (a script's unset variable) routed a task with no id and printed
'route  -> fast': the id seeds the tie-break, so the decision shown was not the one the named task
would get. It is a usage error now, in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_helpers import one_error_line, swarmlog_in


@pytest.mark.parametrize("task_id", ["", "  "])
def test_an_empty_task_id_is_a_usage_error(tmp_path: Path, task_id: str) -> None:
    done = swarmlog_in(tmp_path, "route", "--task-id", task_id)
    assert done.returncode == 2, done
    assert done.stdout == ""
    line = one_error_line(done.stderr)
    assert f"--task-id must name the task (it seeds the tie-break), got {task_id!r}" in line
    assert "\nroute t-1 -> " in swarmlog_in(tmp_path, "route", "--task-id", "t-1").stdout
