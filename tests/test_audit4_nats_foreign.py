"""A message that another client publishes on a log's subject (``nats pub STREAM.events hello``).

Before, the first read of it raised LogCorrupt: from then on every ``log``, ``status`` and
``append`` failed, and since the stream denies deletes nobody could remove it, so one stray publish
halted the night for good. Readers and writers now skip a message that has no record framing at
all, and ``verify`` lists it (exit 1) so the operator finds the publisher.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import nats
from nats_fixtures import NatsServer

from swarmlog.events import Note
from swarmlog.log.framing import frame
from swarmlog.log.nats import NatsLog
from tests.cli_helpers import one_error_line, swarmlog_process


def _publish(url: str, subject: str, *payloads: bytes) -> None:
    async def go() -> None:
        nc = await nats.connect(url)
        js = nc.jetstream()
        for p in payloads:
            await js.publish(subject, p)
        await nc.close()

    asyncio.run(go())


def test_foreign_messages_are_skipped_by_readers_writers_and_listed_by_verify(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    stream = f"F{uuid.uuid4().hex[:10]}"
    url = f"{nats_server.url}/{stream}"
    log = NatsLog(nats_server.url, stream, timeout_s=5)
    try:
        log.append([Note(text="a"), Note(text="b")])
        _publish(nats_server.url, f"{stream}.events", b"hello", b"")
        log.append([Note(text="c")])  # a cached tail meets the foreign messages and carries on
        log.append([Note(text="d")])
        _publish(nats_server.url, f"{stream}.events", b'{"seq": 99}\n')

        done = swarmlog_process("--log", url, "append", "note", '{"text": "e"}', cwd=tmp_path)
        assert (done.returncode, done.stdout, done.stderr) == (0, "5\n", "")

        for after in range(6):
            got = [(e.seq, e.text) for e in log.read(after=after)]
            assert got == [(s, "abcde"[s - 1]) for s in range(after + 1, 6)], after
        assert log.last_seq() == 5

        done = swarmlog_process("--log", url, "log", cwd=tmp_path)
        assert done.returncode == 0, done
        assert [line.split()[-1] for line in done.stdout.splitlines()] == [
            f"text={t}" for t in "abcde"
        ]

        done = swarmlog_process("--log", url, "verify", cwd=tmp_path)
        assert done.returncode == 1, done
        assert done.stdout.count("not a swarmlog message") == 3, done.stdout
        assert "was expected" not in done.stdout, done.stdout  # no false seq gap around them
    finally:
        log.close()


def test_a_damaged_swarmlog_record_is_still_an_error(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    stream = f"D{uuid.uuid4().hex[:10]}"
    log = NatsLog(nats_server.url, stream, timeout_s=5)
    try:
        stored = log.append([Note(text="a")])
        bad = frame(stored[0]).replace(b'"a"', b'"z"')  # framed, checksum no longer matches
        _publish(nats_server.url, f"{stream}.events", bad)
        done = swarmlog_process("--log", f"{nats_server.url}/{stream}", "log", cwd=tmp_path)
        assert done.returncode == 1, done
        line = one_error_line(done.stderr)
        assert "checksum mismatch" in line
        # A stream's advice, not a file log's: it has no segment, and repair cuts nothing there.
        assert "restore the stream from a replica" in line and "segment" not in line, line
    finally:
        log.close()
