"""Creating a log's stream when another stream already holds its subject (``OV.>`` covers
``OV.events``): the server answers 400, error 10065 "subjects overlap with an existing stream",
which escaped NatsLog as a raw nats BadRequestError, so ``swarmlog run --log`` printed a
traceback. It is now a one-line LogError naming the stream, the subject and what to do.
"""

from __future__ import annotations

import asyncio
import uuid

import nats
import pytest
from nats.js.api import StreamConfig
from nats_fixtures import NatsServer

from swarmlog.errors import LogError
from swarmlog.log.select import open_log


def test_subject_held_by_another_stream_is_a_log_error(nats_server: NatsServer) -> None:
    name = f"OV{uuid.uuid4().hex[:8]}"

    async def other() -> None:
        nc = await nats.connect(nats_server.url)
        await nc.jetstream().add_stream(StreamConfig(name=f"X{name}", subjects=[f"{name}.>"]))
        await nc.close()

    asyncio.run(other())
    with pytest.raises(LogError) as exc:
        open_log(f"{nats_server.url}/{name}", create=True, timeout_s=3)
    text = str(exc.value)
    assert "subjects overlap" in text and f"{name}.events" in text and "\n" not in text, text
