"""`swarmlog append` with a JSON object that names a key twice: JSON leaves it undefined which one
counts, and append silently kept the last (a repeated "kind" even changed the event's kind and
gave a baffling error). It is refused on one line naming the key, and nothing is appended."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_helpers import last_seq, one_error_line
from tests.cli_helpers import swarmlog_in as _swarmlog


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    ws = tmp_path / "night"
    assert _swarmlog(ws, "init", "--no-detect").returncode == 0
    return ws


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('{"kind": "note", "text": "a", "text": "b"}', "text"),
        ('{"kind": "note", "kind": "heartbeat", "text": "a"}', "kind"),
        (
            '{"kind": "task_completed", "task_id": "t", "agent": "a", "output": {"x": 1, "x": 2}}',
            "x",
        ),
    ],
)
def test_stdin_line_with_a_repeated_key_is_refused(ws: Path, line: str, key: str) -> None:
    done = _swarmlog(ws, "append", "--stdin", stdin='{"kind": "note", "text": "ok"}\n' + line)
    assert done.returncode == 1, done
    assert done.stdout == "1\n"
    err = one_error_line(done.stderr)
    assert "stdin line 2" in err and f"{key!r}" in err and "twice" in err, err
    assert last_seq(ws) == 1


def test_json_argument_with_a_repeated_key_is_refused(ws: Path) -> None:
    done = _swarmlog(ws, "append", "note", '{"text": "a", "text": "b"}')
    assert done.returncode == 1, done
    err = one_error_line(done.stderr)
    assert "'text'" in err and "twice" in err, err
    assert last_seq(ws) == 0


def test_the_same_key_in_two_objects_is_fine(ws: Path) -> None:
    line = '{"kind": "note", "text": "a", "actor": "me"}\n{"kind": "note", "text": "b"}\n'
    done = _swarmlog(ws, "append", "--stdin", stdin=line)
    assert done.returncode == 0, done
    assert last_seq(ws) == 2
