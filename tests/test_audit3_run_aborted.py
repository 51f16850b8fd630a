"""A night that ends ``aborted`` or ``failed`` makes ``swarmlog run`` exit 1 with one stderr line
saying why and what to do: an aborted one exited 0, as a completed night does, so an unattended
script could not tell, and a failed one exited 1 without a word on stderr."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cli_helpers import run, start_night

from swarmlog.events import PhaseEntered, RunEnded, RunStarted
from swarmlog.log import FileLog


def _events(ws: Path) -> list[object]:
    events = ws / "memory" / "events"
    if not events.exists():
        return []
    log = FileLog(events, create=False)
    try:
        return list(log.read())
    finally:
        log.close()


# Two ways a night is aborted: the human's 'swarmlog abort', and a level-4 escalation (here
# appended as a monitor would raise it), each with the reason the error line must give.
ABORTS = [
    (["abort", "wrong goal"], "wrong goal"),
    (
        [
            "append",
            "escalation_raised",
            '{"escalation_id": "E9", "level": 4, "rule": "runaway", "reason": "burning tokens",'
            ' "actor": "monitor"}',
        ],
        "runaway: burning tokens",
    ),
    (
        [
            "append",
            "run_ended",
            '{"outcome": "failed", "reason": "the Director could not plan", "actor": "scheduler"}',
        ],
        "the Director could not plan",
    ),
]


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize(("command", "reason"), ABORTS)
def test_an_aborted_or_failed_night_exits_1_with_one_error_line(
    tmp_path: Path, command: list[str], reason: str
) -> None:
    ws = tmp_path / "night"
    night = start_night(ws)
    try:
        deadline = time.monotonic() + 60
        while not any(isinstance(e, PhaseEntered) for e in _events(ws)):
            assert night.poll() is None, night.communicate()
            assert time.monotonic() < deadline, "the night never entered a phase"
            time.sleep(0.1)
        assert run(ws, *command) == 0
        out, err = night.communicate(timeout=60)
    finally:
        if night.poll() is None:
            night.kill()
            night.wait()
    (ended,) = [e for e in _events(ws) if isinstance(e, RunEnded)]
    outcome = "failed" if "failed" in command[-1] else "aborted"
    assert ended.outcome == outcome
    assert night.returncode == 1, out[-2000:] + err[-2000:]
    errors = [line for line in err.splitlines() if line.startswith("swarmlog: error: ")]
    assert len(errors) == 1, err
    assert "Traceback" not in err
    (line,) = errors
    (started,) = [e for e in _events(ws) if isinstance(e, RunStarted)]
    assert f"run {started.run} {outcome} (" in line
    assert reason in line
    assert "swarmlog report" in line and "swarmlog run GOAL" in line  # what to do
    assert f"run {outcome}." in out  # the usual closing line is still printed
