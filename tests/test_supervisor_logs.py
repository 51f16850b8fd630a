"""The children's logs under memory/logs are rotated at a run's start once past a size, so a
workspace that runs night after night keeps at most two files' worth per process."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmlog.runtime import supervisor as sup
from swarmlog.workspace import Workspace


def test_a_childs_log_past_the_limit_moves_aside_at_a_runs_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sup, "LOG_ROTATE_BYTES", 100)
    ws = Workspace(tmp_path)
    logs = ws.memory / "logs"
    logs.mkdir(parents=True)
    (logs / "scheduler.log").write_text("old night\n" * 20)  # past the limit
    (logs / "scheduler.log.1").write_text("older night\n")
    (logs / "builder.log").write_text("short\n")  # under it
    s = sup.Supervisor(ws, goal="g", config={}, include_monitor=False, include_renderer=False)
    children = s.plan_children()
    assert {c.name for c in children} >= {"scheduler", "builder"}
    assert not (logs / "scheduler.log").exists()
    assert (logs / "scheduler.log.1").read_text() == "old night\n" * 20
    assert (logs / "builder.log").read_text() == "short\n"
    assert not (logs / "builder.log.1").exists()
