"""A nats:// log on a NATS server that runs without JetStream (``nats-server`` without ``-js``).

Before, every command waited the whole timeout (10 s) retrying the server's "no responders"
answers as a lost quorum, then said "the servers are unreachable or the stream has no quorum",
which sends the operator after the wrong problem. It now fails at once, naming the missing -js.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from nats_fixtures import running_nats_server

from tests.cli_helpers import one_error_line, swarmlog_process


@pytest.fixture
def plain_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    with running_nats_server(tmp_path) as port:
        yield f"nats://127.0.0.1:{port}"


@pytest.mark.parametrize("command", [["log"], ["append", "note", '{"text": "x"}'], ["verify"]])
def test_server_without_jetstream_is_named_at_once(
    tmp_path: Path, plain_server: str, command: list[str]
) -> None:
    started = time.monotonic()
    done = swarmlog_process("--log", f"{plain_server}/S", *command, cwd=tmp_path, timeout=60)
    took = time.monotonic() - started
    assert done.returncode == 1, done
    err = one_error_line(done.stderr)
    assert "does not run JetStream" in err and "-js" in err, err
    assert took < 6, took


def test_account_without_jetstream_is_named_at_once(tmp_path: Path) -> None:
    """A server with JetStream whose account A has none: 503, error 10039, retried 10 s as a lost
    quorum before; now refused at once, naming the account setting; account B still works."""
    store = tmp_path / "store"

    def config(port: int) -> str:
        return (
            f'listen: "127.0.0.1:{port}"\n'
            f'jetstream {{ store_dir: "{store}" }}\n'
            "accounts { A: { users: [{user: a, password: pa}] }, "
            "B: { jetstream: enabled, users: [{user: b, password: pb}] } }\n"
        )

    with running_nats_server(tmp_path, config) as port:
        url = f"nats://127.0.0.1:{port}/S"
        started = time.monotonic()
        done = swarmlog_process(
            "--log", url, "log", cwd=tmp_path, env={"NATS_USER": "a", "NATS_PASSWORD": "pa"}
        )
        assert time.monotonic() - started < 6
        assert done.returncode == 1, done
        err = one_error_line(done.stderr)
        assert "not enabled for this account" in err and "jetstream: enabled" in err, err
        done = swarmlog_process(
            "--log", url, "log", cwd=tmp_path, env={"NATS_USER": "b", "NATS_PASSWORD": "pb"}
        )
        assert done.returncode == 1 and "no stream 'S'" in done.stderr, done
