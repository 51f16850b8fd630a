"""Crash audit: an agent that lost its lease (frozen by SIGSTOP past it, or just slow) must not
touch the work folder when its late reply comes in. The task moved on to another agent, whose
result the log records; the stale reply is discarded from the log, and it must not overwrite the
files that the recorded result wrote either.

A real agent process (``swarmlog agent``) served by an exec command that waits for the test's
signal, over a real file log in tmp_path; the test plays the rest of the team (the scheduler's
time-out, the second agent's claim and result).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from swarmlog.events import (
    ConfigLoaded,
    Event,
    ModelCallFinished,
    RunEnded,
    RunStarted,
    TaskClaimed,
    TaskCompleted,
    TaskRouted,
    TaskStarted,
    TaskSubmitted,
    TaskTimedOut,
)
from swarmlog.log import FileLog

RUN = "night-stale"

# The exec agent: waits until the test creates GO, then replies with a file to write.
REPLY = (
    "import json, os, sys, time\n"
    "sys.stdin.read()\n"
    "go = os.environ['STALE_GO']\n"
    "while not os.path.exists(go):\n"
    "    time.sleep(0.05)\n"
    "print(json.dumps({'summary': 'stale', 'files': {'src/x.py': 'A = 1  # stale\\n'}}))\n"
)


def _wait_for(log: FileLog, pred: object, timeout: float = 15.0) -> Event:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in log.read():
            if pred(event):  # type: ignore[operator]
                return event
        time.sleep(0.05)
    raise AssertionError("the agent did not get there in time")


def test_a_reply_that_comes_after_the_lease_moved_on_writes_no_file(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "memory").mkdir(parents=True)
    script = tmp_path / "reply.py"
    script.write_text(REPLY)
    go = tmp_path / "GO"
    log = FileLog(ws / "memory" / "events", create=True)
    config = {
        "agents": {"builder": {"command": f"{sys.executable} {script}", "timeout_s": 60}},
        "limits": {"lease_s": 30.0, "heartbeat_s": 60.0},
        "run": {"work_dir": "work"},
    }
    log.append(
        [
            RunStarted(goal="g", run=RUN, actor="supervisor"),
            ConfigLoaded(config=config, run=RUN, actor="supervisor"),
            TaskSubmitted(
                task_id="t1", title="write x", task_kind="implement", role="builder", run=RUN
            ),
            TaskRouted(task_id="t1", model="exec", run=RUN, actor="scheduler"),
        ]
    )
    env = {**os.environ, "STALE_GO": str(go)}
    agent = subprocess.Popen(
        [sys.executable, "-m", "swarmlog", "--dir", str(ws), "agent", "--role", "builder"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(log, lambda e: isinstance(e, TaskStarted) and e.agent == "builder")
        # The agent is frozen past its lease: the scheduler times it out, another builder claims
        # the task, does it and writes its file; the log records that result.
        now = time.time()
        log.append(
            [
                TaskTimedOut(task_id="t1", agent="builder", lease_until=now, run=RUN),
                TaskRouted(task_id="t1", model="exec", run=RUN, actor="scheduler"),
                TaskClaimed(
                    task_id="t1", agent="builder-2", lease_until=now + 30, attempt=2, run=RUN
                ),
                TaskStarted(task_id="t1", agent="builder-2", attempt=2, run=RUN),
            ]
        )
        target = ws / "work" / "src" / "x.py"
        target.parent.mkdir(parents=True)
        target.write_text("B = 2  # recorded\n")
        log.append(
            [
                TaskCompleted(
                    task_id="t1",
                    agent="builder-2",
                    attempt=2,
                    summary="recorded",
                    output={"summary": "recorded", "files": ["src/x.py"]},
                    run=RUN,
                    key=f"done:{RUN}:t1",
                )
            ]
        )
        go.touch()  # the frozen agent wakes up and its (stale) reply arrives
        _wait_for(log, lambda e: isinstance(e, ModelCallFinished) and e.actor == "builder")
        log.append([RunEnded(outcome="completed", run=RUN, actor="scheduler", key=f"end:{RUN}")])
        agent.wait(15)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    events = list(log.read())
    done = [e for e in events if isinstance(e, TaskCompleted)]
    assert [(e.agent, e.attempt) for e in done] == [("builder-2", 2)]
    # The work folder holds what the log says was done, not the discarded reply.
    assert target.read_text() == "B = 2  # recorded\n"
