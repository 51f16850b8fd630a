"""The human's commands (issue 7): alerts, ack, pause, resume, abort as ``human_command`` events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from swarmlog.cli import main
from swarmlog.escalation import levels
from swarmlog.events import (
    AlertRaised,
    EscalationResolved,
    HumanCommand,
)
from swarmlog.log import FileLog
from tests.cli_helpers import seed_alert


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    assert main(["init", "--dir", str(root)]) == 0
    return root


def events(ws: Path) -> list[object]:
    with FileLog(ws / "memory" / "events", create=False) as log:
        return list(log.read())


def commands(ws: Path) -> list[HumanCommand]:
    return [e for e in events(ws) if isinstance(e, HumanCommand)]


@pytest.mark.parametrize("command", ["pause", "resume", "abort"])
def test_commands_append_human_command_events(
    ws: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_alert(ws)
    assert main([command, "because", "--dir", str(ws), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    [cmd] = commands(ws)
    assert (cmd.command, cmd.text, cmd.actor, cmd.run) == (command, "because", "human", "night-1")
    assert out == {
        "seq": cmd.seq, "command": command, "target": "", "run": "night-1", "recorded": True,
        "run_state": "open",
    }  # fmt: skip


def test_directive_follows_the_commands(ws: Path) -> None:
    seed_alert(ws)
    state = levels.project(events(ws))  # type: ignore[arg-type]
    assert levels.team_directive(state) == "waiting_for_human"
    main(["pause", "--dir", str(ws)])
    assert levels.team_directive(levels.project(events(ws))) == "paused"  # type: ignore[arg-type]
    main(["resume", "--dir", str(ws)])
    state = levels.project(events(ws))  # type: ignore[arg-type]
    assert not state.paused
    main(["abort", "--dir", str(ws)])
    assert levels.team_directive(levels.project(events(ws))) == "aborting"  # type: ignore[arg-type]


def test_ack_known_and_unknown_ids(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed_alert(ws)
    assert main(["ack", "A9", "--dir", str(ws)]) == 1
    err = capsys.readouterr().err
    assert "no alert or escalation 'A9'" in err and "E1" in err and "A1" in err
    assert commands(ws) == []
    assert main(["ack", "A1", "--text", "rebooted", "--dir", str(ws)]) == 0
    assert main(["ack", "E2", "--dir", str(ws)]) == 0
    assert [(c.command, c.target) for c in commands(ws)] == [("ack", "A1"), ("ack", "E2")]


def test_alerts_lists_open_and_past(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", "--dir", str(ws)]) == 0
    assert "no alerts" in capsys.readouterr().out
    seed_alert(ws)
    with FileLog(ws / "memory" / "events") as log:
        log.append(
            [
                AlertRaised(
                    alert_id="A2", level=4, rule="human_abort", title="ABORT", run="night-1"
                ),
                EscalationResolved(escalation_id="E1", by="human", run="night-1"),
            ]
        )
    assert main(["alerts", "--dir", str(ws), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["alert_id"], r["status"], r["level"]) for r in rows] == [
        ("A2", "open", 4),
        ("A1", "acked", 3),
    ]
    assert main(["alerts", "--open", "--dir", str(ws)]) == 0
    text = capsys.readouterr().out
    assert "A2" in text and "A1 " not in text
    assert "team:" in text


def test_every_human_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("alerts", "ack", "pause", "resume", "abort"):
        assert main([name, "--help"]) == 0
        assert "Example: swarmlog" in capsys.readouterr().out


def test_pause_from_another_process_reaches_a_subscriber_within_a_second(ws: Path) -> None:
    seed_alert(ws)  # a run in progress: without one, pause, resume and abort are refused
    seen: list[tuple[float, HumanCommand]] = []
    stop = threading.Event()
    ready = threading.Event()

    def follow() -> None:
        log = FileLog(ws / "memory" / "events", create=False)
        ready.set()
        for event in log.subscribe(stop=stop, poll_s=0.05):
            if isinstance(event, HumanCommand):
                seen.append((time.monotonic(), event))
            if stop.is_set():
                break
        log.close()

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    assert ready.wait(5)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWARMLOG_")}
    root = Path(__file__).resolve().parent.parent
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    for command in ("pause", "resume", "abort"):
        subprocess.run(
            [sys.executable, "-m", "swarmlog", command, "--dir", str(ws)],
            check=True,
            env=env,
            timeout=30,
            capture_output=True,
        )
        done = time.monotonic()
        deadline = done + 1.0
        while time.monotonic() < deadline and not any(e.command == command for _, e in seen):
            time.sleep(0.01)
        hits = [t for t, e in seen if e.command == command]
        assert hits, f"{command} not seen within a second"
        assert hits[0] - done < 1.0
    stop.set()
    reader.join(5)
    assert [e.command for _, e in seen] == ["pause", "resume", "abort"]
    assert all(e.actor == "human" for _, e in seen)
