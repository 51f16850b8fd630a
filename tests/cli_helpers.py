"""What the CLI tests share: a command in a workspace, its one error line, the log's last seq and
a copy of the committed example night."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from swarmlog.cli import main
from swarmlog.events import AlertRaised, EscalationRaised, RunStarted
from swarmlog.log import FileLog

REPO = Path(__file__).resolve().parent.parent


def run(ws: Path, *args: str) -> int:
    """Run one ``swarmlog`` command in the workspace ``ws``; return its exit code."""
    return main([*args, "--dir", str(ws)])


def swarmlog_process(
    *args: str,
    cwd: Path | None = None,
    stdin: str | None = None,
    env: Mapping[str, str | None] = {},
    timeout: float = 120,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m swarmlog ARGS`` in a child process of this checkout, as a user would.

    ``SWARMLOG_HOME`` and ``SWARMLOG_LOG`` are cleared unless ``env`` sets them; a name that
    ``env`` maps to None is removed.
    """
    return subprocess.run(
        [sys.executable, "-m", "swarmlog", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_child_env(env),
        cwd=cwd,
        preexec_fn=preexec_fn,
    )


def _child_env(env: Mapping[str, str | None]) -> dict[str, str]:
    full = {**os.environ, "PYTHONPATH": str(REPO)}
    for name in ("SWARMLOG_HOME", "SWARMLOG_LOG"):
        full.pop(name, None)
    for name, value in env.items():
        if value is None:
            full.pop(name, None)
        else:
            full[name] = value
    return full


def swarmlog_popen(ws: Path, *args: str) -> subprocess.Popen[str]:
    """Start ``swarmlog ARGS --dir WS`` in a child process, with the environment of
    ``swarmlog_process`` and stdout and stderr piped as text; the caller reaps it."""
    return subprocess.Popen(
        [sys.executable, "-m", "swarmlog", *args, "--dir", str(ws)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env({}),
    )


def swarmlog_in(ws: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run one ``swarmlog`` command in a child process, in the workspace ``ws``."""
    return swarmlog_process(*args, "--dir", str(ws), stdin=stdin)


def one_error_line(err: str) -> str:
    """Assert that stderr holds exactly one explained error line, no traceback; return it."""
    assert err.startswith("swarmlog: error: "), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def last_seq(ws: Path) -> int:
    log = FileLog(ws / "memory" / "events")
    try:
        return log.last_seq()
    finally:
        log.close()


def copy_example_night(ws: Path) -> Path:
    """Copy the committed example night's log (474 events) into ``ws``; return ``ws``."""
    (ws / "memory" / "events").mkdir(parents=True)
    for segment in sorted((REPO / "memory" / "events").glob("*.ndjson")):
        shutil.copy(segment, ws / "memory" / "events" / segment.name)
    return ws


Posted = tuple[str, dict[str, str], bytes]


@contextmanager
def recording_webhook() -> Iterator[tuple[str, list[Posted]]]:
    """Run an HTTP server on loopback that answers every POST with 200 and records it.

    Yields the URL ``http://127.0.0.1:PORT/hook`` and the list that receives ``(path, headers,
    body)`` for each POST as it arrives; the server stops on exit.
    """
    received: list[Posted] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            received.append((self.path, dict(self.headers), body))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def start_night(ws: Path) -> subprocess.Popen[str]:
    """Start ``swarmlog --dir WS run --sim demo`` in a child process, its stdout and stderr piped
    as text; the caller waits for it or kills it."""
    return subprocess.Popen(
        [sys.executable, "-m", "swarmlog", "--dir", str(ws), "run", "--sim", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def seed_alert(ws: Path) -> None:
    """Append to the workspace's log a run night-1 with an open level-3 escalation E1 and its
    alert A1, and an open level-1 escalation E2."""
    with FileLog(ws / "memory" / "events") as log:
        log.append(
            [
                RunStarted(goal="night", run="night-1"),
                EscalationRaised(escalation_id="E1", level=3, rule="memory", run="night-1"),
                AlertRaised(
                    alert_id="A1",
                    level=3,
                    rule="memory",
                    title="EMERGENCY level 3: memory",
                    escalation_id="E1",
                    run="night-1",
                ),
                EscalationRaised(escalation_id="E2", level=1, rule="stuck_calls", run="night-1"),
            ]
        )
