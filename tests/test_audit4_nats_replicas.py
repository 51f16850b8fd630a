"""``nats://HOST:PORT/STREAM?replicas=3`` on a single, unclustered JetStream server.

The server refuses such a stream for good (err 10074, "replicas > 1 not supported in
non-clustered mode"), but the refusal is a ServerError, which the log retried as a lost quorum for
the whole timeout and then blamed "unreachable servers or no quorum". It now fails at once,
naming the replicas value and what to do.
"""

from __future__ import annotations

import time
import uuid

import pytest
from nats_fixtures import NatsServer

from swarmlog.errors import LogError
from swarmlog.log.select import open_log


def test_replicas_on_an_unclustered_server_fail_at_once(nats_server: NatsServer) -> None:
    url = f"{nats_server.url}/R{uuid.uuid4().hex[:10]}?replicas=3"
    started = time.monotonic()
    with pytest.raises(LogError) as exc:
        open_log(url, create=True, timeout_s=8)
    assert time.monotonic() - started < 4
    text = str(exc.value)
    assert "replicas=3" in text and "not in a cluster" in text and "quorum" not in text, text
    assert "\n" not in text
    with open_log(url.replace("?replicas=3", ""), create=True, timeout_s=8) as log:
        assert log.last_seq() == 0  # nothing half-made is left under that name
