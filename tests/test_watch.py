"""``swarmlog watch`` in a pseudo-terminal and through a pipe; ``log --follow --alerts``."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from swarmlog.cli import main
from swarmlog.config import parse_config
from swarmlog.events import (
    AgentRegistered,
    AgentStatusChanged,
    ConfigLoaded,
    EscalationRaised,
    EventBase,
    GpuSample,
    HardwareSampled,
    ModelCallFinished,
    PhaseEntered,
    RunStarted,
    TaskRouted,
    TaskStarted,
    TaskSubmitted,
)
from swarmlog.log import FileLog
from swarmlog.watch import CLEAR, EMPTY_VIEW, SECTIONS, fold_view, render_view, summary_line, watch
from swarmlog.workspace import Workspace

T0 = 1_800_000_000.0
GIB = 1024**3


def _night() -> list[EventBase]:
    """A run in its execution phase: two agents, one call running, one queued, an emergency."""
    cfg = parse_config(
        {
            "models": {
                "fast": {"endpoint": "http://127.0.0.1:1", "model": "q:1.5b", "parallel": 4},
                "deep": {"endpoint": "http://127.0.0.1:1", "model": "q:32b", "parallel": 1},
            }
        }
    )
    events: list[EventBase] = [
        RunStarted(goal="Add authentication", run="r1", ts=T0),
        ConfigLoaded(config=cfg.to_event_dict(), run="r1", ts=T0),
        PhaseEntered(phase="execution", expected_s=600, run="r1", ts=T0 + 10),
        AgentRegistered(agent="builder", role="builder", run="r1", ts=T0 + 11),
        AgentRegistered(agent="inspector", role="inspector", run="r1", ts=T0 + 11),
    ]
    for n, kind, model in ((1, "implement", "deep"), (2, "review", "deep"), (3, "lint", "fast")):
        events += [
            TaskSubmitted(task_id=f"t{n}", title=kind, task_kind=kind, run="r1", ts=T0 + 12),
            TaskRouted(task_id=f"t{n}", model=model, run="r1", ts=T0 + 13),
        ]
    events += [
        TaskStarted(task_id="t1", agent="builder", model="deep", run="r1", ts=T0 + 14),
        AgentStatusChanged(agent="builder", status="working", task_id="t1", run="r1", ts=T0 + 14),
        ModelCallFinished(model="fast", total_ms=1500.0, run="r1", ts=T0 + 20),
        HardwareSampled(
            gpus=(
                GpuSample(
                    index=0, name="NVIDIA H100", mem_total=80 * GIB, mem_free=60 * GIB, util_gpu=42
                ),
            ),
            ram_total=64 * GIB,
            ram_available=48 * GIB,
            ram_percent=25.0,
            run="r1",
            ts=T0 + 21,
        ),
        EscalationRaised(
            escalation_id="esc-1",
            level=3,
            rule="queue_depth",
            reason="queue depth 60 > 50",
            run="r1",
            ts=T0 + 30,
        ),
    ]
    return events


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    assert main(["init", "--dir", str(tmp_path), "--no-detect"]) == 0
    log = FileLog(tmp_path / "memory" / "events")
    log.append(_night())
    log.close()
    return Workspace(tmp_path)


def test_render_view_shows_every_section_in_a_fixed_size():
    view = fold_view(EMPTY_VIEW, [*_night()])
    lines = render_view(view, now=T0 + 310, width=80, height=40)
    text = "\n".join(lines)
    assert len(lines) <= 40 and all(len(x) <= 80 for x in lines)
    for section in SECTIONS:
        assert section in lines
    assert "phase execution: 5m 00s of expected 10m 00s (50%)" in text
    assert "builder        working     t1" in text and "7/10" in text
    deep = next(x for x in lines if x.strip().startswith("deep"))
    assert deep.split()[1:3] == ["1/1", "1"]  # one call running, one queued behind it
    fast = next(x for x in lines if x.strip().startswith("fast"))
    assert fast.split()[1:5] == ["0/4", "1", "1", "1.50s"]
    assert "GPU 0 NVIDIA H100: 21.5/85.9 GB (25%), util 42%" in text
    assert "team directive: waiting_for_human" in text
    assert "open L3 esc-1 queue_depth" in text
    overrun = "\n".join(render_view(view, now=T0 + 1300, width=80, height=40))
    assert "OVERRUN" in overrun


def test_a_small_terminal_still_shows_every_section_heading():
    view = fold_view(EMPTY_VIEW, _night())
    lines = render_view(view, now=T0 + 60, width=40, height=16)
    assert len(lines) <= 16 and all(len(x) <= 40 for x in lines)
    for section in SECTIONS:
        assert section in lines
    assert any("more (enlarge" in x for x in lines)


def test_an_empty_log_renders_placeholders():
    text = "\n".join(render_view(EMPTY_VIEW, now=T0, width=100, height=40))
    assert "no run yet" in text and "no hardware sample yet" in text
    assert "team directive: run" in text and "no open alerts" in text


def test_not_a_terminal_prints_plain_summary_lines(ws: Workspace):
    out = io.StringIO()
    assert watch(ws, interval_s=0.01, out=out, is_tty=False, max_frames=2) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and CLEAR not in out.getvalue()
    assert "seq=16 run=r1 phase=execution" in lines[0]
    assert "calls=deep 1+1q,fast 0+1q" in lines[0]
    assert "gpu=21.5/85.9GB level=3 alerts=0 directive=waiting_for_human" in lines[0]
    assert summary_line(fold_view(EMPTY_VIEW, []), now=T0).endswith("directive=run")


def _read_until(fd: int, needles: list[str], timeout_s: float) -> str:
    buf = b""
    poller = select.poll()  # not select(): a long test run may hold descriptors above 1024
    poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if poller.poll(100):
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            text = buf.decode(errors="replace")
            if all(n in text for n in needles):
                return text
    return buf.decode(errors="replace")


def test_watch_in_a_pseudo_terminal_redraws_and_exits_0_on_ctrl_c(ws: Workspace):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 90, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "swarmlog", "--dir", str(ws.root), "watch", "--interval", "0.1"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    try:
        text = _read_until(master, [*SECTIONS, "team directive"], timeout_s=20)
        for section in SECTIONS:
            assert f"\n{section}" in text.replace("\r\n", "\n")
        assert CLEAR in text
        frame = text.replace("\r\n", "\n").split(CLEAR)[-1]
        assert all(len(line) <= 90 for line in frame.split("\n"))
        assert "waiting_for_human" in text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_log_follow_alerts_prints_the_greppable_lines_as_they_come(ws: Workspace):
    proc = subprocess.Popen(
        [sys.executable, "-m", "swarmlog", "--dir", str(ws.root), "log", "--follow", "--alerts"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        first = _read_until(proc.stdout.fileno(), ["EMERGENCY"], timeout_s=20)
        assert first.startswith("EMERGENCY level=3 rule=queue_depth run=r1 seq=16")
        log = FileLog(ws.events)
        log.append(
            [
                EscalationRaised(escalation_id="esc-2", level=2, rule="conflict", run="r1"),
                AgentStatusChanged(agent="scout", status="idle", run="r1"),
            ]
        )
        log.close()
        more = _read_until(proc.stdout.fileno(), ["ESCALATE"], timeout_s=20)
        assert more.strip() == "ESCALATE level=2 rule=conflict run=r1 seq=17"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)  # also closes the pipes


@pytest.mark.timeout(20)
def test_watch_ends_with_the_run(ws: Workspace):
    from swarmlog.events import RunEnded

    log = FileLog(ws.events)
    log.append([RunEnded(outcome="completed", run="r1", ts=T0 + 600)])
    log.close()
    out = io.StringIO()
    assert watch(ws, interval_s=0.01, out=out, is_tty=False) == 0  # no max_frames: it stops
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "ended=completed" in lines[0]
    assert lines[1] == "run r1 ended: completed"
