"""`swarmlog ack a1` (or 'ALL', or ' A1 ') at 3 a.m.: the ids are printed as A1/E2 and 'all', and
ack refused anything typed otherwise with 'no alert or escalation 'a1' in the log (open: A1, …)'.
Now the id is read case-insensitively and trimmed, and the command is recorded with its
canonical id."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmlog.events import HumanCommand
from swarmlog.log import FileLog
from tests.cli_helpers import seed_alert
from tests.cli_helpers import swarmlog_in as _swarmlog


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    ws = tmp_path / "night"
    assert _swarmlog(ws, "init", "--no-detect").returncode == 0
    seed_alert(ws)
    return ws


def _acks(ws: Path) -> list[str]:
    with FileLog(ws / "memory" / "events", create=False) as log:
        return [e.target for e in log.read() if isinstance(e, HumanCommand)]


@pytest.mark.parametrize(("typed", "recorded"), [("a1", "A1"), (" A1 ", "A1"), ("e1", "E1")])
def test_ack_reads_an_id_in_any_case(ws: Path, typed: str, recorded: str) -> None:
    done = _swarmlog(ws, "ack", typed)
    assert done.returncode == 0, done
    assert _acks(ws) == [recorded]


def test_ack_all_in_capitals(ws: Path) -> None:
    done = _swarmlog(ws, "ack", "ALL")
    assert done.returncode == 0, done
    assert _acks(ws) == ["all"]
