"""Entry points of the long-running processes: agent, scheduler, monitor.

Each one stops cleanly on SIGTERM/SIGINT and on its own when its supervisor disappears (a
supervisor killed with SIGKILL cannot stop its children), so no orphan keeps working.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from swarmlog.log import EventLog
from swarmlog.log.select import open_log, resolve_log
from swarmlog.runtime.agent import AgentProcess, exec_caller
from swarmlog.runtime.calls import ModelCalls
from swarmlog.runtime.context import project_context
from swarmlog.runtime.parent import expected_parent
from swarmlog.runtime.prompts import warm_up
from swarmlog.runtime.scheduler import Scheduler
from swarmlog.team.settings import team_settings
from swarmlog.workspace import Workspace

__all__ = [
    "open_run_log",
    "serve",
    "serve_agent",
    "serve_scheduler",
]


async def _watch_parent(main: asyncio.Task[Any], parent: int, every_s: float = 0.5) -> None:
    """Cancel ``main`` once the parent is gone: an orphan's work is redone after its lease."""
    while True:
        await asyncio.sleep(every_s)
        if os.getppid() != parent:
            main.cancel()
            return


async def serve(make: Callable[[], Any], *, watch_parent: bool = True) -> Any:
    """Run ``make().run()`` until it returns, a signal arrives or the parent dies.

    SIGTERM and SIGINT stop the worker at its next step (a clean shutdown); a dead parent (a
    supervisor killed with SIGKILL) cancels it at once, even in the middle of a model call.
    """
    worker = make()
    # What start-up built (modules, classes, compiled templates, HTTP clients) lives as long as
    # the process: keep the cyclic collector from scanning it again in every full collection
    # (~30 ms apiece here, at random points of the night).
    gc.freeze()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, worker.stop)
    run: Callable[[], Awaitable[Any]] = worker.run
    main = asyncio.ensure_future(run())
    watcher = asyncio.create_task(_watch_parent(main, expected_parent())) if watch_parent else None
    try:
        return await main
    except asyncio.CancelledError:
        if watcher is not None and watcher.done():
            return None  # orphaned: stop quietly
        raise
    finally:
        if watcher is not None:
            watcher.cancel()


def open_run_log(ws: Workspace, log_at: str | None = None) -> EventLog:
    """Open the run's log: ``log_at`` (``--log``), else the selection for ``ws``; it must exist."""
    return open_log(resolve_log(ws, log_at), create=False)


def _limits(ws: Workspace, log: EventLog) -> tuple[dict[str, Any], dict[str, Any]]:
    ctx = project_context(log.read())
    config = ctx.config
    return config.get("limits", {}), config


def _warm_clients(calls: ModelCalls, config: dict[str, Any]) -> None:
    """Build each configured endpoint's HTTP client now (~50 ms of TLS set-up apiece on a busy
    machine) rather than inside the agent's first task."""
    for profile in config.get("models", {}).values():
        if isinstance(profile, dict) and profile.get("endpoint"):
            calls._client(str(profile["endpoint"]))


def _warm_up_agent(role: str, *, http: bool) -> None:
    """What an agent's first task would otherwise pay for, done the first time it is idle (not
    at start-up, where the whole team starts at once and the first tasks are already running):
    its prompt templates and reply schemas, and the async backend httpcore loads on its first
    request (~30 ms). Runs inside the event loop."""
    warm_up(role)
    if http:
        anyio.Event()  # loads anyio's asyncio backend


def serve_agent(
    ws: Workspace, role: str, agent_id: str, *, seed: int = 0, log_at: str | None = None
) -> None:
    """Run one agent process for ``role`` until the run ends; its work folder is in ``ws``."""
    log = open_run_log(ws, log_at)
    limits, config = _limits(ws, log)
    agent_cfg = config.get("agents", {}).get(role, {})
    command = agent_cfg.get("command")
    calls = None if command else ModelCalls(agent_id, seed=seed or zlib.crc32(agent_id.encode()))
    caller = exec_caller(command, float(agent_cfg.get("timeout_s", 600))) if command else calls
    assert caller is not None
    if calls is not None:
        _warm_clients(calls, config)

    def make() -> AgentProcess:
        return AgentProcess(
            log,
            agent=agent_id,
            role=role,
            call_model=caller,
            lease_s=float(limits.get("lease_s", 30.0)),
            heartbeat_s=float(limits.get("heartbeat_s", 5.0)),
            workspace=ws.root,
            on_idle=lambda: _warm_up_agent(role, http=calls is not None),
        )

    async def main() -> None:
        try:
            await serve(make)
        finally:
            if calls is not None:
                await calls.aclose()

    asyncio.run(main())


def serve_scheduler(ws: Workspace, *, log_at: str | None = None) -> str:
    """Run the scheduler until the run ends; return the outcome."""
    log = open_run_log(ws, log_at)
    _, config = _limits(ws, log)
    team = team_settings(config.get("team") or {})
    outcome: str = asyncio.run(serve(lambda: Scheduler(log, team=team)))
    return outcome
