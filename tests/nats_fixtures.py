"""Real ``nats-server -js`` processes on loopback for the JetStream backend's tests.

Tests that need a server skip, with the install hint, when the ``nats-server`` binary is missing.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from swarmlog.log.nats import NatsLog

__all__ = [
    "INSTALL_HINT",
    "NatsServer",
    "free_port",
    "nats_log_factory",
    "nats_server",
    "require_nats_server",
    "running_nats_server",
    "start_cluster",
]

INSTALL_HINT = "install nats-server (apt-get install nats-server) to run the JetStream tests"


def require_nats_server() -> str:
    """Return the path of ``nats-server``, or skip the test with the install hint."""
    path = shutil.which("nats-server")
    if path is None:
        pytest.skip(INSTALL_HINT)
    return path


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class NatsServer:
    """One ``nats-server`` process with JetStream and a file store, restartable on its ports."""

    def __init__(
        self,
        store: Path,
        *,
        name: str = "n1",
        port: int | None = None,
        cluster_port: int | None = None,
        routes: tuple[int, ...] = (),
    ) -> None:
        self.binary = require_nats_server()
        self.store = store
        self.name = name
        self.port = port or free_port()
        self.cluster_port = cluster_port
        self.routes = routes
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _config(self) -> Path:
        lines = [
            f'server_name: "{self.name}"',
            f'listen: "127.0.0.1:{self.port}"',
            f'jetstream {{ store_dir: "{self.store}" }}',
        ]
        if self.cluster_port is not None:
            routes = ", ".join(f'"nats-route://127.0.0.1:{p}"' for p in self.routes)
            lines.append(
                f'cluster {{ name: "swarmlog-test", listen: "127.0.0.1:{self.cluster_port}", '
                f"routes: [{routes}] }}"
            )
        path = self.store.with_suffix(".conf")
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it accepts connections."""
        self.store.mkdir(parents=True, exist_ok=True)
        log = open(self.store.with_suffix(".log"), "ab")
        try:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self._config())],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited: {self.store.with_suffix('.log')}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.1):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"nats-server on port {self.port} did not start in {timeout} s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server (SIGTERM: clean shutdown; SIGKILL: a crash) and reap it."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def kill(self) -> None:
        """Crash the server: SIGKILL, no shutdown."""
        self.stop(signal.SIGKILL)


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Wait until ``127.0.0.1:port`` accepts connections; raise if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nats-server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nats-server on port {port} did not start in {timeout} s")


@contextmanager
def running_nats_server(workdir: Path, config: Callable[[int], str] | None = None) -> Iterator[int]:
    """Run one ``nats-server`` on a free loopback port and yield the port once it listens.

    With ``config``, ``config(port)`` is written to ``workdir/s.conf`` and the server runs with
    ``-c``; without, it runs plain (no JetStream). The server is stopped on exit.
    """
    port = free_port()
    if config is None:
        args = ["-a", "127.0.0.1", "-p", str(port)]
    else:
        conf = workdir / "s.conf"
        conf.write_text(config(port))
        args = ["-c", str(conf)]
    proc = subprocess.Popen(
        [require_nats_server(), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def start_cluster(root: Path) -> list[NatsServer]:
    """Start three clustered JetStream servers on loopback ports (each routes to the others)."""
    cports = [free_port() for _ in range(3)]
    nodes = [
        NatsServer(
            root / f"n{i + 1}",
            name=f"n{i + 1}",
            cluster_port=cports[i],
            routes=tuple(p for j, p in enumerate(cports) if j != i),
        )
        for i in range(3)
    ]
    for node in nodes:
        node.start()
    return nodes


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """One JetStream server for the whole session; each test uses its own stream."""
    server = NatsServer(tmp_path_factory.mktemp("nats") / "store")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_log_factory(nats_server: NatsServer) -> Iterator[Callable[..., NatsLog]]:
    """Open ``NatsLog`` objects on fresh streams of the session server; close them afterwards."""
    opened: list[NatsLog] = []

    def make(stream: str | None = None, **options: Any) -> NatsLog:
        options.setdefault("timeout_s", 10.0)
        log = NatsLog(nats_server.url, stream or f"t{uuid.uuid4().hex[:12]}", **options)
        opened.append(log)
        return log

    try:
        yield make
    finally:
        for log in opened:
            log.close()
