"""A nats:// log whose server is down when a command starts (nothing listens on the port).

The command retried for its timeout, as it should (a server restarting comes back), but then said
only "(TimeoutError)", hiding why: the connection was refused. The error now carries the last
failure the client met, so the operator sees that nothing listens at that address.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from nats_fixtures import free_port

from swarmlog.errors import LogError
from swarmlog.log.nats import NatsLog
from tests.cli_helpers import one_error_line, swarmlog_process


def test_refused_connection_is_named_after_the_timeout() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(LogError) as exc:
        NatsLog(f"nats://127.0.0.1:{port}", "S", timeout_s=1.5)
    assert time.monotonic() - started < 5
    text = str(exc.value)
    assert f"127.0.0.1:{port}" in text and "Connect call failed" in text, text
    assert "(TimeoutError)" not in text, text


def test_cli_with_the_server_down_says_why_on_one_line(tmp_path: Path) -> None:
    port = free_port()
    done = swarmlog_process("--log", f"nats://127.0.0.1:{port}/S", "status", cwd=tmp_path)
    assert done.returncode == 1, done
    err = one_error_line(done.stderr)
    assert "cannot connect to NATS" in err and "Connect call failed" in err, err
