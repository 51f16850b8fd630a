"""Audit #12 (route), #13 and #15 (config): values checked, hints that a person can act on.

Each test runs the real ``swarmlog`` on a workspace in tmp_path.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cli_helpers import one_error_line, run

from swarmlog.cli import main
from swarmlog.events import CircuitOpened, Note
from swarmlog.log import FileLog, list_segments

T0 = 1_790_000_000.0
CONFIG = """\
[models.fast]
endpoint = "http://127.0.0.1:9/v1"
model = "q:1.5b"
capabilities = ["lint", "format", "syntax"]

[models.deep]
endpoint = "http://127.0.0.1:9/v1"
model = "q:32b"
capabilities = ["lint", "format", "syntax", "architecture", "refactor", "security"]
"""


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    assert main(["init", "--dir", str(root), "--no-detect"]) == 0
    (root / "swarmlog.toml").write_text(CONFIG)
    return root


# route (#12)


def test_route_lines_negative(ws: Path, capsys: pytest.CaptureFixture[str]):
    capsys.readouterr()
    assert run(ws, "route", "--lines", "-5") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "--lines must be 0 or more" in one_error_line(captured.err)


def test_route_unknown_role_lists_the_roles(ws: Path, capsys: pytest.CaptureFixture[str]):
    capsys.readouterr()
    assert run(ws, "route", "--role", "nosuchrole") == 2
    err = one_error_line(capsys.readouterr().err)
    assert "--role 'nosuchrole' is not a known role; give one of: architect, builder," in err
    assert run(ws, "route", "--role", "biulder") == 2
    assert "did you mean 'builder'?" in one_error_line(capsys.readouterr().err)
    assert run(ws, "route", "--role", "builder", "--task-kind", "lint") == 0
    assert "route cli-task -> " in capsys.readouterr().out


def test_route_unknown_task_kind_lists_the_kinds(ws: Path, capsys: pytest.CaptureFixture[str]):
    capsys.readouterr()
    assert run(ws, "route", "--task-kind", "nosuchkind") == 2
    err = one_error_line(capsys.readouterr().err)
    assert "--task-kind 'nosuchkind' is not a known task kind; give one of: " in err
    for kind in ("general", "lint", "refactor", "plan", "implement"):
        assert f" {kind}," in err or f" {kind}\n" in err
    assert run(ws, "route", "--task-kind", "refactr") == 2
    assert "did you mean 'refactor'?" in capsys.readouterr().err
    for kind in ("general", "implement", "plan", "security"):
        assert run(ws, "route", "--task-kind", kind) == 0


def test_route_accepts_a_task_kind_already_in_the_log(ws: Path, capsys: pytest.CaptureFixture[str]):
    payload = '{"task_id": "t1", "title": "x", "task_kind": "migrate"}'
    assert run(ws, "append", "task_submitted", payload) == 0
    capsys.readouterr()
    assert run(ws, "route", "--task-kind", "migrate") == 0


def test_route_shows_an_open_circuit_as_a_utc_time(ws: Path, capsys: pytest.CaptureFixture[str]):
    log = FileLog(ws / "memory" / "events")
    log.append(
        [
            Note(text="before", ts=T0),
            CircuitOpened(target="fast", reason="5 failures", retry_at=T0 + 35.5, ts=T0),
        ]
    )
    log.close()
    capsys.readouterr()
    assert run(ws, "route", "--task-kind", "lint", "--explain") == 0
    out = capsys.readouterr().out
    at = dt.datetime.fromtimestamp(T0 + 35.5, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"circuit open until {at} (in 36 s by the log's clock)" in out
    assert "t=17" not in out  # no raw epoch seconds
    assert run(ws, "route", "--task-kind", "lint", "--json") == 0
    decision = json.loads(capsys.readouterr().out)["decision"]
    fast = next(c for c in decision["candidates"] if c["model"] == "fast")
    assert fast["reason"] == f"circuit open until t={T0 + 35.5:.3f}"  # scripts get the number


# repair (#13)


def test_repair_refusal_does_not_suggest_repair(ws: Path, capsys: pytest.CaptureFixture[str]):
    for text in ("a", "b", "c"):
        assert run(ws, "note", text) == 0
    seg = list_segments(ws / "memory" / "events")[-1][1]
    data = bytearray(seg.read_bytes())
    data[data.index(b"\n") + 12] ^= 0x04  # damage line 2; line 3 stays valid
    seg.write_bytes(bytes(data))
    capsys.readouterr()
    assert run(ws, "repair") == 1
    err = one_error_line(capsys.readouterr().err)
    assert "not a torn tail" in err and "restore the segment from a backup" in err
    assert "repair changed nothing" in err
    assert "'swarmlog repair' to truncate" not in err
    assert seg.read_bytes() == bytes(data)


# config (#13 did you mean, #15 no action)


@pytest.mark.parametrize(
    ("table", "wrong", "right"),
    [
        ("[models.fast]\nendpoint = 'http://h/v1'\nmodel = 'm'\n", "paralel = 2", "parallel"),
        ("[limits]\n", "max_concurent = 2", "max_concurrent"),
        ("[limits.batching]\n", "max_sise = 2", "max_size"),
        ("", "[modles.fast]\nendpoint = 'x'", "models"),
    ],
)
def test_config_check_suggests_the_key_meant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], table: str, wrong: str, right: str
):
    path = tmp_path / "swarmlog.toml"
    path.write_text(f"{table}{wrong}\n")
    capsys.readouterr()
    assert main(["config", "check", "--file", str(path)]) == 1
    err = one_error_line(capsys.readouterr().err)
    assert "unknown key (value" in err and f"did you mean {right!r}?" in err


def test_config_check_lists_the_keys_when_nothing_is_close(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    path = tmp_path / "swarmlog.toml"
    path.write_text("[routing]\nzzz = 1\n")
    capsys.readouterr()
    assert main(["config", "check", "--file", str(path)]) == 1
    err = one_error_line(capsys.readouterr().err)
    assert "routing.zzz: unknown key (value 1); check the spelling (allowed: seed, " in err


def test_config_without_an_action_names_the_actions(capsys: pytest.CaptureFixture[str]):
    capsys.readouterr()
    assert main(["config"]) == 2
    err = one_error_line(capsys.readouterr().err)
    assert "config needs an action ('check': validate swarmlog.toml" in err
    assert "e.g. swarmlog config check" in err
