"""Wrong NATS credentials (NATS_USER / NATS_PASSWORD): the server answers 'Authorization
Violation' on every try, and the log retried the connect for the whole timeout (10 s) and then
told the operator to check that nats-server runs with -js. It now gives up at the first refusal
and names the credentials to fix; right credentials still connect.
"""

from __future__ import annotations

import time
from pathlib import Path

from nats_fixtures import running_nats_server

from tests.cli_helpers import one_error_line, swarmlog_process


def test_wrong_password_is_named_at_once(tmp_path: Path) -> None:
    def config(port: int) -> str:
        return (
            f'listen: "127.0.0.1:{port}"\njetstream {{ store_dir: "{tmp_path / "store"}" }}\n'
            "authorization { user: night, password: right }\n"
        )

    with running_nats_server(tmp_path, config) as port:
        url = f"nats://127.0.0.1:{port}/S"
        started = time.monotonic()
        done = swarmlog_process(
            "--log", url, "log", cwd=tmp_path, env={"NATS_USER": "night", "NATS_PASSWORD": "bad"}
        )
        assert time.monotonic() - started < 5
        assert done.returncode == 1, done
        err = one_error_line(done.stderr)
        assert "refused the credentials" in err and "Authorization Violation" in err, err
        assert "NATS_PASSWORD" in err and "bad" not in err, err
        done = swarmlog_process(
            "--log", url, "log", cwd=tmp_path, env={"NATS_USER": "night", "NATS_PASSWORD": "right"}
        )
        assert done.returncode == 1 and "no stream 'S'" in done.stderr, done
