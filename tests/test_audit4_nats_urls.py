"""`swarmlog --log nats://…` with a bad port or a stream that does not exist.

A port that is not a number from 1 to 65535 reached nats-py's URL parser, whose bare ValueError
escaped as a traceback with exit 1; it is now a usage error (exit 2) on one line naming the server.
A missing stream told CLI users to "open it with create=True", a Python argument they cannot give;
it now names the stream and the command that creates it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from nats_fixtures import NatsServer

from swarmlog.errors import UsageError
from swarmlog.log.nats import NatsLog, parse_nats_url
from tests.cli_helpers import one_error_line, swarmlog_process


@pytest.mark.parametrize("hosts", ["127.0.0.1:abc", "127.0.0.1:99999", "127.0.0.1:0", "h:1,:4222"])
@pytest.mark.parametrize("command", ["log", "verify", "status"])
def test_bad_port_is_a_usage_error_on_one_line(tmp_path: Path, hosts: str, command: str) -> None:
    done = swarmlog_process("--log", f"nats://{hosts}/S", command, cwd=tmp_path, timeout=30)
    assert done.returncode == 2, done
    err = one_error_line(done.stderr)
    assert "bad NATS server" in err and "HOST:PORT" in err, err


def test_bad_port_is_refused_by_the_api_too() -> None:
    with pytest.raises(UsageError, match="bad NATS server 'localhost:4x'"):
        parse_nats_url("nats://localhost:4x/S")
    with pytest.raises(UsageError, match="bad NATS server"):
        NatsLog("nats://localhost:70000", "S")
    assert parse_nats_url("nats://a,b:1,[::1]:2,u:p@c:3/S").servers == (
        "nats://a",
        "nats://b:1",
        "nats://[::1]:2",
        "nats://u:p@c:3",
    )


def test_missing_stream_names_it_and_how_to_create_it(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    url = f"{nats_server.url}/NOSUCH_{tmp_path.name[-8:].replace('-', '_')}"
    done = swarmlog_process("--log", url, "append", "note", '{"text": "x"}', cwd=tmp_path)
    assert done.returncode == 1, done
    err = one_error_line(done.stderr)
    assert "create=True" not in err, err
    assert "no stream" in err and f"swarmlog run --log {url}" in err, err


def test_address_without_a_server_says_so(tmp_path: Path) -> None:
    done = swarmlog_process("--log", "nats:///S1", "log", cwd=tmp_path, timeout=30)
    assert done.returncode == 2, done
    err = one_error_line(done.stderr)
    assert "names no server" in err and "stream name" not in err, err
