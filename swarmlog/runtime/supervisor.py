"""``swarmlog run``: start the team as separate processes, keep them alive, report progress.

The supervisor owns no state of the run: it appends ``run_started`` and ``config_loaded``, starts
the scheduler, one process per agent role, the monitor and the renderer, restarts any that dies
(with back-off), and reads the log to print progress. Kill it with SIGKILL and ``swarmlog run
--resume`` carries on from the log alone; stop it with Ctrl-C and the children stop cleanly.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from swarmlog.defaults import ROLES
from swarmlog.errors import SwarmlogError
from swarmlog.escalation import levels
from swarmlog.events import (
    AgentStatusChanged,
    ConfigLoaded,
    DetectorFired,
    EscalationRaised,
    Event,
    HumanCommand,
    Note,
    RunEnded,
    RunStarted,
)
from swarmlog.log.select import LOG_ENV, open_log
from swarmlog.runtime.board import EMPTY_BOARD, FINISHED, Board, apply_board, in_flight_by_model
from swarmlog.runtime.context import EMPTY_CONTEXT, RunContext, apply_context, project_context
from swarmlog.runtime.parent import SUPERVISOR_ENV
from swarmlog.workspace import Workspace

__all__ = ["ROLES", "Child", "Supervisor", "new_run_id"]

LOG_ROTATE_BYTES = 8 << 20  # a child's log past this at a run's start moves to <name>.log.1
# A child that ran this long before it died is restarted without the back-off its earlier deaths
# built up: the back-off is for a process that dies as it starts, not for one crash an hour.
STABLE_S = 60.0
# A child stopped for a level-1 restart that has not exited this long after SIGTERM (hung in a
# call, frozen by SIGSTOP, ignoring the signal) is killed: a restart must not wait on the agent.
KILL_GRACE_S = 10.0


def new_run_id(now: float, pid: int) -> str:
    """A run id that sorts by start time: ``run-20261123T031500Z-1a2b``."""
    stamp = dt.datetime.fromtimestamp(now, tz=dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"run-{stamp}-{pid & 0xFFFF:04x}"


@dataclass
class Child:
    """One supervised process."""

    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    stopping: bool = False  # terminated on purpose, not yet started again
    stopping_since: float = 0.0  # time.monotonic() of that SIGTERM
    next_start: float = 0.0
    started_at: float = 0.0  # time.monotonic() of the latest start
    log_path: Path | None = None
    _log_fh: Any = field(default=None, repr=False)

    def start(self, env: Mapping[str, str]) -> None:
        assert self.log_path is not None
        if self._log_fh is None:
            self._log_fh = open(self.log_path, "ab")
        self.stopping = False
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv, env=dict(env), stdout=self._log_fh, stderr=subprocess.STDOUT
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None


class Supervisor:
    """Start, watch and stop the processes of one run."""

    def __init__(
        self,
        ws: Workspace,
        *,
        goal: str,
        config: dict[str, Any],
        config_path: str = "",
        scenario: str = "",
        resume: bool = False,
        workers: Mapping[str, int] | None = None,
        out: TextIO = sys.stdout,
        clock: Callable[[], float] = time.time,
        extra_env: Mapping[str, str] | None = None,
        include_monitor: bool = True,
        include_renderer: bool = True,
        log_at: str | None = None,
        child_root: Path | None = None,
    ) -> None:
        self.ws = ws
        self.goal = goal
        self.config = config
        self.config_path = config_path
        self.scenario = scenario
        self.resume = resume
        self.workers = dict(workers or {})
        self.out = out
        self.clock = clock
        self.extra_env = dict(extra_env or {})
        self.include_monitor = include_monitor
        self.include_renderer = include_renderer
        # The log every child is told to use (SWARMLOG_LOG); by default the workspace's file log.
        self.log_at = log_at or str(ws.events)
        self.log = open_log(self.log_at, create=True)
        # With a child_root, each child but the renderer runs in its own workspace folder
        # <child_root>/<name>: the processes share nothing but the log.
        self.child_root = child_root
        self.children: list[Child] = []
        self.stopped_by: int | None = None  # the signal that stopped the run, if one did
        self.run_id = ""  # the run being supervised, once started or resumed
        self.end_reason = ""  # why the run ended, once it has (see ``_note_end``)
        self._abort_cause = False  # end_reason names what aborted the run
        self._last_progress = ""
        self._announced = 0

    # Start

    def start_run(self) -> str:
        """Append run_started and config_loaded (or resume the open run); return the run id."""
        ctx = project_context(self.log.read())
        now = self.clock()
        if self.resume:
            if not ctx.run:
                raise SwarmlogError(
                    f"nothing to resume: the log in {self.ws.events} has no run; "
                    f"start one with 'swarmlog run GOAL'"
                )
            if ctx.ended:
                raise SwarmlogError(
                    f"run {ctx.run} already ended ({ctx.outcome}); start a new one with "
                    f"'swarmlog run GOAL'"
                )
            run, goal = ctx.run, ctx.goal
        else:
            if ctx.run and not ctx.ended:
                raise SwarmlogError(
                    f"run {ctx.run} is still open in {self.ws.events}; continue it with "
                    f"'swarmlog run --resume' or end it with 'swarmlog abort'"
                )
            run, goal = new_run_id(now, os.getpid()), self.goal
        self.log.append(
            [
                RunStarted(
                    goal=goal,
                    scenario=self.scenario,
                    resumed=self.resume,
                    host=os.uname().nodename,
                    pid=os.getpid(),
                    run=run,
                    actor="supervisor",
                ),
                ConfigLoaded(
                    config=self.config, path=self.config_path, run=run, actor="supervisor"
                ),
            ]
        )
        if self.resume:
            esc = levels.project(self.log.read())
            directive = levels.team_directive(esc)
            if directive == "waiting_for_human":
                # A crash usually leaves a level-3 emergency behind (the dead supervisor's model
                # servers went with it): restarting the run is the operator's answer to it.
                # Recorded as the supervisor's doing, not as a human's acknowledgement.
                self.log.append(
                    [
                        HumanCommand(
                            command="resume",
                            text="'swarmlog run --resume' restarted the team, which was waiting "
                            "for a human at level 3; the restart counts as 'swarmlog resume'",
                            run=run,
                            actor="supervisor",
                        )
                    ]
                )
                self._say("the run was waiting for a human; --resume counts as 'swarmlog resume'")
            elif directive == "paused":
                # An operator's pause outlasts a restart: only 'swarmlog resume' lifts it.
                self._say(
                    "the run is paused ('swarmlog pause'): the team stays idle until "
                    "'swarmlog resume'"
                )
        return run

    def _argv(self, *words: str, name: str = "") -> list[str]:
        root = self.child_root / name if self.child_root is not None and name else self.ws.root
        return [sys.executable, "-m", "swarmlog", "--dir", str(root), *words]

    def count(self, role: str) -> int:
        """How many processes run ``role``: ``run --workers ROLE=N`` where given, else the
        config's ``[agents.ROLE] count`` (validated as a whole number >= 1), else 1."""
        if role in self.workers:
            return max(1, self.workers[role])
        table = (self.config.get("agents") or {}).get(role)
        count = table.get("count", 1) if isinstance(table, dict) else 1
        return count if isinstance(count, int) and count >= 1 else 1

    def plan_children(self) -> list[Child]:
        logs = self.ws.memory / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        children = [Child("scheduler", self._argv("scheduler", name="scheduler"))]
        for role in ROLES:
            for n in range(self.count(role)):
                agent = role if n == 0 else f"{role}-{n + 1}"
                argv = self._argv("agent", "--role", role, "--id", agent, name=agent)
                children.append(Child(agent, argv))
        if self.include_monitor:
            children.append(Child("monitor", self._argv("monitor", name="monitor")))
        if self.include_renderer:
            children.append(Child("renderer", self._argv("render", "--follow")))
        for child in children:
            child.log_path = logs / f"{child.name}.log"
            _rotate(child.log_path)
        return children

    # Supervise

    def run(self, *, poll_s: float = 0.2, stop_after_s: float | None = None) -> str:
        """Start everything and supervise until the run ends; return the outcome."""
        lock_fd = self._hold_workspace()
        try:
            return self._supervise(poll_s, stop_after_s)
        finally:
            os.close(lock_fd)  # releases the lock

    def _hold_workspace(self) -> int:
        """Take the workspace's supervisor lock, or refuse: two supervisors on one run would
        each start a team. The lock (``memory/logs/supervisor.lock``, holding who has it) is
        released by the kernel when this process ends, however it ends. It guards one host's
        workspace; supervisors on other hosts sharing a nats:// log are not seen."""
        path = self.ws.memory / "logs" / "supervisor.lock"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise SwarmlogError(
                f"cannot create {path}: {exc.strerror}; check that {self.ws.memory} is writable"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise SwarmlogError(
                f"another 'swarmlog run' ({holder}) is supervising {self.ws.root}; follow it "
                f"with 'swarmlog watch', or stop it (Ctrl-C) before starting or resuming a run"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {os.uname().nodename}\n".encode(), 0)
        return fd

    def _supervise(self, poll_s: float, stop_after_s: float | None) -> str:
        self._announced = self.log.last_seq()  # a resumed run does not repeat old lines
        run = self.run_id = self.start_run()
        self._say(f"run {run}: {self.goal if not self.resume else 'resumed'}")
        self.children = self.plan_children()
        env = {
            **os.environ,
            **self.extra_env,
            "SWARMLOG_RUN": run,
            LOG_ENV: self.log_at,
            SUPERVISOR_ENV: str(os.getpid()),
        }
        for child in self.children:
            child.start({**env, "SWARMLOG_AGENT": child.name})
        previous = {
            signal.SIGINT: signal.signal(signal.SIGINT, self._on_signal),
            signal.SIGTERM: signal.signal(signal.SIGTERM, self._on_signal),
        }
        reader = self.log.reader(0)
        board: Board = EMPTY_BOARD
        ctx: RunContext = EMPTY_CONTEXT
        esc: levels.EscalationState = levels.EMPTY
        started = time.monotonic()
        try:
            while self.stopped_by is None:
                for event in reader.poll():
                    board = apply_board(board, event)
                    ctx = apply_context(ctx, event)
                    esc = levels.apply(esc, event)
                    self._recover(event)
                    if ctx.run == run and event.run in ("", run):  # this run's (or no run's)
                        self._note_end(event)
                    line = levels.alert_line(event)
                    if line and event.seq > self._announced:
                        print(line, file=sys.stderr, flush=True)  # the seed's grep target
                self._progress(board, ctx, esc)
                if ctx.run == run and ctx.ended:
                    break
                if stop_after_s is not None and time.monotonic() - started > stop_after_s:
                    break
                self._restart_dead(env)
                time.sleep(poll_s)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._shutdown(run, ended=ctx.ended)
        return ctx.outcome if ctx.ended else "interrupted"

    def _restart_dead(self, env: Mapping[str, str]) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.alive() and child.proc is not None and child.stopping:
                if now - child.stopping_since >= KILL_GRACE_S:
                    self._say(f"{child.name} did not stop within {KILL_GRACE_S:g}s; killing it")
                    child.proc.kill()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        child.proc.wait(5)
                else:
                    continue
            if child.alive() or child.proc is None:
                continue
            if child.next_start == 0.0:
                if now - child.started_at >= STABLE_S:
                    child.restarts = 0  # it ran well before it died: start again at once
                delay = min(30.0, 0.5 * 2**child.restarts)
                child.next_start = now + delay
                code = child.proc.returncode
                self._say(f"{child.name} exited with {code}; restarting in {delay:.1f}s")
            elif now >= child.next_start:
                child.restarts += 1
                child.next_start = 0.0
                child.start({**env, "SWARMLOG_AGENT": child.name})

    def _recover(self, event: Event) -> None:
        """Level 1 (seed guide §4): the supervisor restarts the agent a detector caught."""
        if not (isinstance(event, DetectorFired) and event.level == 1 and event.agent):
            return
        if event.seq <= self._announced:
            return  # from before this supervisor started its children: they are new already
        child = next((c for c in self.children if c.name == event.agent), None)
        if child is None or child.proc is None or child.proc.poll() is not None:
            return
        if child.stopping:
            return  # another detector caught the same moment: one restart answers both
        self._say(f"level 1 ({event.detector}): restarting {child.name}")
        child.stopping = True
        child.stopping_since = time.monotonic()
        child.proc.terminate()
        self.log.append(
            [
                AgentStatusChanged(
                    agent=event.agent,
                    status="restarted",
                    detail=f"level-1 recovery: {event.message}"[:200],
                    run=event.run,
                    actor="supervisor",
                )
            ]
        )

    def _note_end(self, event: Event) -> None:
        """Keep why the run ended, in the words an operator acts on: a level-4 escalation's
        reason (a detector's, or the human's abort with its text) over the human's abort command
        over ``run_ended``'s own reason ("escalation level 4"), which names neither."""
        if isinstance(event, EscalationRaised) and event.level >= 4 and event.reason:
            self.end_reason = f"{event.rule}: {event.reason}" if event.rule else event.reason
            self._abort_cause = True
        elif isinstance(event, HumanCommand) and event.command == "abort":
            if not self._abort_cause:
                said = f": {event.text}" if event.text else ""
                self.end_reason = f"the human aborted it ('swarmlog abort'){said}"
                self._abort_cause = True
        elif isinstance(event, RunEnded) and event.reason and not self._abort_cause:
            self.end_reason = event.reason

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stopped_by = signum

    def _shutdown(self, run: str, *, ended: bool) -> None:
        if not ended:
            self.log.append(
                [
                    Note(
                        text="supervisor stopped before the run ended; continue with "
                        "'swarmlog run --resume'",
                        run=run,
                        actor="supervisor",
                    )
                ]
            )
        for child in self.children:
            if child.proc is not None and child.proc.poll() is None:
                child.proc.terminate()
        deadline = time.monotonic() + 5.0
        for child in self.children:
            child.stop(max(0.1, deadline - time.monotonic()))

    # Progress

    def _progress(self, board: Board, ctx: RunContext, esc: levels.EscalationState) -> None:
        tasks = board.tasks.values()
        done = sum(1 for t in tasks if t.status in FINISHED)
        flight = ", ".join(f"{m}:{n}" for m, n in sorted(in_flight_by_model(board).items()) if m)
        phase = f"{ctx.phase}#{ctx.iteration}" if ctx.phase else "starting"
        directive = levels.team_directive(esc)
        state = "" if directive == "run" else f" {directive.upper().replace('_', ' ')}"
        line = f"[{phase}]{state} tasks {done}/{len(board.tasks)} in flight {flight or '-'}"
        if line != self._last_progress:
            self._last_progress = line
            self._say(line)

    def _say(self, text: str) -> None:
        stamp = dt.datetime.now(tz=dt.UTC).strftime("%H:%M:%S")
        print(f"{stamp} {text}", file=self.out, flush=True)


def _rotate(path: Path) -> None:
    """Move a child's log that grew past ``LOG_ROTATE_BYTES`` to ``<name>.log.1`` (replacing the
    previous one), so the logs of many nights keep at most two files' worth per process."""
    try:
        if path.stat().st_size > LOG_ROTATE_BYTES:
            path.replace(path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass
