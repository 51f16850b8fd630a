"""The event log on NATS JetStream: the file log's contract for a team spread over several hosts.

One JetStream stream holds one log. Each ``append`` call becomes ONE message on the subject
``<stream>.events`` whose payload is the batch's records, framed exactly as the file log writes
them (``swarmlog.log.framing``: compact JSON, CRC, newline), so ``archive_to_files`` copies the
stream into segment files byte for byte.

Guarantees, and how they are kept:

- **Dense global seq.** A writer reads the last message, stamps seqs after its last record and
  publishes with ``Nats-Expected-Last-Sequence``: the server refuses the message if anything was
  appended in between (optimistic concurrency on the whole stream). Without ``expected_seq`` the
  writer re-reads, restamps and retries; with it, the conflict is a ``SeqConflict``.
- **Atomic batches.** A batch is one message, so it is stored whole or not at all and never
  interleaves with another writer's batch. A batch larger than the server's ``max_payload``
  (1 MiB by default) is split into several messages chained the same way; only such a batch may
  interleave with other writers' events (each part stays whole and in order).
- **Exactly once.** Every message carries ``Nats-Msg-Id``: the idempotency ``key`` of a lone keyed
  event, otherwise an id drawn once per append call. A publish whose acknowledgement was lost
  (server restart, lost quorum, dropped connection) is retried with the same id, and the server
  answers ``duplicate`` with the stored message instead of storing it twice. Keys are also checked
  against an index of the whole stream (built on the first keyed append), so a key is honoured
  forever, not only within the server's duplicate window.
- **Durability** is the server's: a single 2.9 server acknowledges after writing to its file store
  without an fsync per message (a server process crash keeps acknowledged events, a power cut may
  lose the last ones); a stream with ``replicas=3`` acknowledges once a quorum (2 of 3 nodes) holds
  the message, so killing any one node loses nothing acknowledged. While a replicated stream has
  no quorum, appends fail with a ``LogError`` after ``timeout_s`` and succeed again on their own
  once the nodes return.

The protocol is synchronous with async twins, while nats-py is asyncio: a ``NatsLog`` runs its own
event loop on a private daemon thread and every sync call waits for a coroutine there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import hashlib
import os
import re
import stat
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import msgspec
import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import (
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    StorageType,
    StreamConfig,
    StreamInfo,
)
from nats.js.client import JetStreamContext

from swarmlog.errors import LogCorrupt, LogError, SeqConflict, UsageError
from swarmlog.events import Event, EventBase, decode
from swarmlog.log.file import SEGMENT_SUFFIX, list_segments
from swarmlog.log.framing import check_line, decode_lines, frame, framed, line_seq
from swarmlog.log.protocol import Problem, RepairReport, VerifyReport

__all__ = ["NatsLog", "NatsReader", "NatsTarget", "archive_to_files", "parse_nats_url"]

_T = TypeVar("_T")

_EXPECTED_LAST_SEQ = "Nats-Expected-Last-Sequence"
_MSG_ID = "Nats-Msg-Id"
_ERR_WRONG_LAST_SEQ = 10071
_ERR_STREAM_NOT_FOUND = 10059
_ERR_NO_MESSAGE = 10037
_ERR_REPLICAS_UNCLUSTERED = 10074  # "replicas > 1 not supported in non-clustered mode"
_ERR_ACCOUNT_NO_JETSTREAM = 10039  # "JetStream not enabled for account"
_STREAM_NAME = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
# Failures after which the outcome of a request is unknown and a retry is safe.
_TRANSPORT: tuple[type[Exception], ...] = (
    TimeoutError,
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    nats.js.errors.NoStreamResponseError,
)
# JetStream answers while a replicated stream has no leader (lost quorum, election in progress).
_NO_QUORUM: tuple[type[Exception], ...] = (
    nats.js.errors.ServiceUnavailableError,
    nats.js.errors.ServerError,
)
_SMALL_RANGE = 64  # fewer missing messages than this are fetched by direct gets, not a consumer
_CHUNK_MSGS = 4096  # messages returned by one poll at most
_HEADER_ROOM = 512  # bytes of max_payload kept free for headers


# Where a log lives


class NatsTarget(msgspec.Struct, frozen=True, kw_only=True):
    """A parsed ``nats://HOST:PORT[,HOST:PORT…]/STREAM[?replicas=N]`` address."""

    servers: tuple[str, ...]
    stream: str
    replicas: int = 1

    @property
    def display(self) -> str:
        """Return the address without any credentials, for messages and logs."""
        hosts = ",".join(_strip_userinfo(s) for s in self.servers)
        return f"nats://{hosts}/{self.stream}"


def _strip_userinfo(server: str) -> str:
    rest = server.split("://", 1)[-1]
    return rest.rsplit("@", 1)[-1]


def parse_nats_url(url: str) -> NatsTarget:
    """Parse ``nats://HOST:PORT[,HOST:PORT…]/STREAM[?replicas=N]`` into a ``NatsTarget``."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("nats", "tls"):
        raise UsageError(
            f"not a NATS address: {_strip_userinfo(url)!r}; write nats://HOST:PORT/STREAM"
        )
    rest, _, query = rest.partition("?")
    hosts, _, stream = rest.partition("/")
    stream = stream.strip("/")
    if not hosts.strip(","):
        raise UsageError(
            f"NATS address {scheme}:///{stream} names no server; write nats://HOST:PORT/STREAM"
        )
    if not _STREAM_NAME.match(stream):
        raise UsageError(
            f"NATS address {scheme}://{_strip_userinfo(hosts)}/{stream} needs a stream name of "
            f"letters, digits, '-' or '_'; write nats://HOST:PORT/STREAM"
        )
    replicas = 1
    for part in filter(None, query.split("&")):
        name, _, value = part.partition("=")
        if name != "replicas" or not value.isdigit() or not 1 <= int(value) <= 5:
            raise UsageError(
                f"unknown or bad NATS address option {part!r}; the only option is replicas=1..5"
            )
        replicas = int(value)
    servers = tuple(f"{scheme}://{h}" for h in hosts.split(",") if h)
    for server in servers:
        _check_server(server)
    return NatsTarget(servers=servers, stream=stream, replicas=replicas)


def _check_server(server: str) -> None:
    """Refuse a ``HOST:PORT`` that nats-py cannot parse (it raises a bare ``ValueError``)."""
    hostport = _strip_userinfo(server)
    host, colon, port = hostport.rpartition(":") if not hostport.endswith("]") else ("", "", "")
    if not colon:
        host, port = hostport, "4222"
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise UsageError(
            f"bad NATS server {hostport!r}: write HOST:PORT with a port from 1 to 65535, "
            f"e.g. nats://127.0.0.1:4222/STREAM"
        )


# The log


class _AsyncStop(Protocol):  # asyncio.Event, anyio.Event
    def is_set(self) -> bool: ...


class NatsLog:
    """An ``EventLog`` kept in one JetStream stream, shared by processes on any number of hosts.

    Args:
        servers: one or more ``nats://HOST:PORT`` URLs of the same cluster.
        stream: the stream name (letters, digits, ``-``, ``_``); its subject is ``<stream>.events``.
        replicas: replicas of a stream this log creates (3 on a three-node cluster).
        create: create the stream when it does not exist; otherwise that is a ``LogError``.
        timeout_s: how long one call keeps retrying while servers are unreachable or without
            quorum before it raises ``LogError``.
        user, password, creds: credentials; each defaults to ``NATS_USER``, ``NATS_PASSWORD``,
            ``NATS_CREDS`` (a ``.creds`` file) from the environment. They never appear in a message.
        clock: the source of ``ts`` for events appended without one.
    """

    def __init__(
        self,
        servers: str | Sequence[str],
        stream: str,
        *,
        replicas: int = 1,
        create: bool = True,
        timeout_s: float = 10.0,
        request_timeout_s: float = 2.0,
        duplicate_window_s: float = 120.0,
        user: str | None = None,
        password: str | None = None,
        creds: str | None = None,
        clock: Callable[[], float] = time.time,
        name: str = "swarmlog",
    ) -> None:
        server_list = (servers,) if isinstance(servers, str) else tuple(servers)
        self.target = NatsTarget(servers=server_list, stream=stream, replicas=replicas)
        if not _STREAM_NAME.match(stream):
            raise UsageError(f"bad NATS stream name {stream!r}; use letters, digits, '-' or '_'")
        for server in server_list:
            _check_server(server)
        self.subject = f"{stream}.events"
        self.timeout_s = timeout_s
        self.request_timeout_s = request_timeout_s
        self.duplicate_window_s = duplicate_window_s
        self._clock = clock
        env = os.environ
        self._auth: dict[str, Any] = {}
        if (u := user if user is not None else env.get("NATS_USER")) is not None:
            self._auth["user"] = u
            pw = password if password is not None else env.get("NATS_PASSWORD")
            if pw is not None:
                self._auth["password"] = pw
        if (c := creds if creds is not None else env.get("NATS_CREDS")) is not None:
            self._auth["user_credentials"] = c
        self._name = name
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._tail: tuple[int, int] | None = None  # (stream seq, event seq) of the last message
        self._keys: dict[str, Event] = {}
        self._keys_upto = 0  # stream seq the key index has read
        self._keys_lock: asyncio.Lock | None = None
        self._sources: set[_Source] = set()
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"swarmlog-nats-{stream}", daemon=True
        )
        self._thread.start()
        try:
            self._call(self._start(create))
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_url(cls, url: str, **options: Any) -> NatsLog:
        """Open the log at ``nats://HOST:PORT[,…]/STREAM[?replicas=N]``."""
        t = parse_nats_url(url)
        options.setdefault("replicas", t.replicas)
        return cls(t.servers, t.stream, **options)

    def __repr__(self) -> str:
        return f"NatsLog({self.target.display!r})"

    # Lifecycle

    def _call(self, coro: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        if self._closed:
            coro.close()
            raise LogError(f"the NATS log {self.target.display} is closed; open it again")
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout if timeout is not None else self.timeout_s * 2 + 5)
        except concurrent.futures.TimeoutError as exc:
            fut.cancel()
            raise LogError(
                f"NATS log {self.target.display} did not answer in time; check the servers"
            ) from exc

    async def _start(self, create: bool) -> None:
        self._keys_lock = asyncio.Lock()

        met: list[Exception] = []

        refused = asyncio.Event()

        async def quiet(exc: Exception) -> None:
            if not refused.is_set():
                met[:] = [exc]  # failures surface as LogError from the call that met them
            if isinstance(exc, nats.errors.AuthorizationError) or (
                "authorization violation" in str(exc).lower()
            ):
                met[:] = [exc]
                refused.set()  # wrong credentials stay wrong: no use retrying them

        options: dict[str, Any] = dict(
            servers=list(self.target.servers),
            name=self._name,
            connect_timeout=max(1, round(self.request_timeout_s)),
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            # nats-py types this as int but sleeps for it: reconnect quickly after a restart.
            reconnect_time_wait=cast(int, 0.1),
            error_cb=quiet,
            **self._auth,
        )
        nc = Client()
        connecting = asyncio.ensure_future(nc.connect(**options))
        waiting = asyncio.ensure_future(refused.wait())
        try:
            await asyncio.wait(
                {connecting, waiting}, timeout=self.timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiting.cancel()
            if not connecting.done():
                connecting.cancel()
                await asyncio.gather(connecting, return_exceptions=True)
        try:
            if connecting.cancelled():
                raise TimeoutError
            connecting.result()
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            await nc.close()
            if refused.is_set():
                raise LogError(
                    f"NATS at {self.target.display} refused the credentials "
                    f"({_describe(met[0])}); set NATS_USER and NATS_PASSWORD, or NATS_CREDS, "
                    f"to a user the server knows"
                ) from exc
            why = _describe(met[0] if met and isinstance(exc, TimeoutError) else exc)
            raise LogError(
                f"cannot connect to NATS at {self.target.display} within {self.timeout_s:g} s "
                f"({why}); check that nats-server runs with -js and the address"
            ) from exc
        self._nc = nc
        self._js = nc.jetstream(timeout=self.request_timeout_s)
        await self._require_jetstream(nc)
        await self._retrying("open the stream", functools.partial(self._ensure_stream, create))

    async def _require_jetstream(self, nc: Client) -> None:
        """Fail at once where JetStream is missing instead of retrying it as a lost quorum.

        A server without JetStream answers every JetStream request "no responders" (a 503 with no
        JetStream error code), and one whose account lacks JetStream answers 503 with error 10039;
        ``_retrying`` cannot tell either from a cluster electing a leader. The first is refused
        only when the server we reached also says it has no JetStream, so a node without
        JetStream in a cluster whose other nodes have it still works.
        """
        assert self._js is not None
        try:
            await self._js._jsm.account_info()
        except (nats.errors.NoRespondersError, nats.js.errors.ServiceUnavailableError) as exc:
            code = getattr(exc, "err_code", None)
            if code == _ERR_ACCOUNT_NO_JETSTREAM:
                raise LogError(
                    f"JetStream is not enabled for this account on {self.target.display}; "
                    f"enable it in the server's accounts config (jetstream: enabled) or connect "
                    f"as another user (NATS_USER, NATS_CREDS)"
                ) from exc
            if code is None and not nc._server_info.get("jetstream"):
                raise LogError(
                    f"the NATS server at {self.target.display} does not run JetStream; start "
                    f"nats-server with -js (or a jetstream {{}} block in its config)"
                ) from exc
        except (TimeoutError, nats.errors.Error):
            pass  # left to the retries that open the stream

    async def _ensure_stream(self, create: bool) -> None:
        assert self._js is not None
        jsm = self._js._jsm
        try:
            info = await jsm.stream_info(self.target.stream)
        except nats.js.errors.NotFoundError as exc:
            if exc.err_code not in (None, _ERR_STREAM_NOT_FOUND):
                raise
            if not create:
                raise LogError(
                    f"no stream {self.target.stream!r} at {self.target.display}; check the "
                    f"stream name, or create the log by starting a run on it "
                    f"('swarmlog run --log {self.target.display} GOAL')"
                ) from exc
            config = StreamConfig(
                name=self.target.stream,
                subjects=[self.subject],
                storage=StorageType.FILE,
                num_replicas=self.target.replicas,
                duplicate_window=self.duplicate_window_s,
                discard=DiscardPolicy.OLD,
                deny_delete=True,
                deny_purge=True,
            )
            try:
                info = await jsm.add_stream(config)
            except nats.js.errors.APIError as exc2:
                if exc2.err_code == _ERR_REPLICAS_UNCLUSTERED:
                    raise LogError(
                        f"cannot create stream {self.target.stream!r} with replicas="
                        f"{self.target.replicas} at {self.target.display}: the server is not "
                        f"in a cluster; use replicas=1 or connect to a clustered JetStream"
                    ) from exc2
                if isinstance(exc2, _NO_QUORUM):
                    raise  # retried: the cluster may answer once it has a leader
                raise LogError(
                    f"NATS refused to create stream {self.target.stream!r} for the subject "
                    f"{self.subject!r} at {self.target.display}: "
                    f"{exc2.description or _describe(exc2)} (error {exc2.err_code}); choose "
                    f"another stream name or remove what holds that subject"
                ) from exc2
        if self.subject not in (info.config.subjects or []):
            raise LogError(
                f"stream {self.target.stream!r} at {self.target.display} does not carry the "
                f"subject {self.subject!r}; it is not a swarmlog log, choose another stream name"
            )

    def close(self) -> None:
        """Close the connection and stop the private event loop; the stream stays on the server."""
        if self._closed:
            return
        self._closed = True
        if self._loop.is_running():
            try:
                fut = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
                fut.result(self.request_timeout_s + 5)
            except (concurrent.futures.TimeoutError, nats.errors.Error, OSError):
                pass
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if not self._loop.is_running():
            self._loop.close()

    async def _shutdown(self) -> None:
        for source in list(self._sources):
            await source.close()
        if self._nc is not None:
            nc, self._nc = self._nc, None
            await nc.close()

    def __enter__(self) -> NatsLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Retrying what the cluster cannot answer now

    async def _retrying(self, what: str, attempt: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``attempt`` until it succeeds, retrying transport and quorum failures."""
        deadline = time.monotonic() + self.timeout_s
        delay = 0.05
        while True:
            try:
                return await attempt()
            except (*_TRANSPORT, *_NO_QUORUM) as exc:
                if self._nc is None or self._nc.is_closed:
                    raise LogError(f"the NATS log {self.target.display} is closed") from exc
                if time.monotonic() + delay > deadline:
                    raise LogError(
                        f"cannot {what} on {self.target.display} for {self.timeout_s:g} s "
                        f"({_describe(exc)}): the servers are unreachable or the stream has no "
                        f"quorum; bring the nodes back and retry (an idempotency key makes a "
                        f"retried append safe)"
                    ) from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)

    # Reading single messages

    def _where(self, stream_seq: int) -> str:
        return f"{self.target.display}#{stream_seq}"

    async def _get(self, stream_seq: int) -> bytes:
        assert self._js is not None
        try:
            msg = await self._js._jsm.get_msg(self.target.stream, seq=stream_seq)
        except nats.js.errors.NotFoundError as exc:
            raise LogCorrupt(
                self._where(stream_seq), 1, "message missing from the stream (deleted?)"
            ) from exc
        return msg.data or b""

    async def _get_many(self, first: int, last: int) -> list[tuple[int, bytes]]:
        datas = await asyncio.gather(*(self._get(s) for s in range(first, last + 1)))
        return list(zip(range(first, last + 1), datas, strict=True))

    async def _js_info(self, stream: str) -> StreamInfo:
        assert self._js is not None
        return await self._js._jsm.stream_info(stream)

    async def _fetch_tail(self) -> tuple[int, int]:
        """Return (stream seq, event seq) of the last message; (0, 0) for an empty log."""
        assert self._js is not None
        try:
            msg = await self._js._jsm.get_msg(self.target.stream, subject=self.subject)
        except nats.js.errors.NotFoundError as exc:
            if exc.err_code == _ERR_STREAM_NOT_FOUND:
                raise LogError(
                    f"stream {self.target.stream!r} vanished from {self.target.display}; "
                    f"restore it or archive what is left"
                ) from exc
            self._tail = (0, 0)
            return self._tail
        data = msg.data or b""
        sseq = int(msg.seq or 0)
        at = sseq
        while _foreign(data):  # the event seq is the last swarmlog message's
            at -= 1
            if at == 0:
                data = b""
                break
            data = await self._get(at)
        eseq = 0
        if data:
            line = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
            if problem := check_line(line):
                raise LogCorrupt(self._where(at), data.count(b"\n"), f"last record: {problem}")
            eseq = line_seq(line)
        tail = (sseq, eseq)
        if self._tail is None or tail[0] >= self._tail[0]:
            self._tail = tail
        return tail

    def _decode(self, stream_seq: int, data: bytes, expected_first: int | None) -> list[Event]:
        """Decode one message's records; a message another client put on the subject holds none."""
        if _foreign(data):
            return []
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        if not lines:
            raise LogCorrupt(self._where(stream_seq), 1, "empty message")
        if expected_first is None:
            if problem := check_line(lines[0]):
                raise LogCorrupt(self._where(stream_seq), 1, problem)
            expected_first = line_seq(lines[0])
        return decode_lines(
            lines, path=self._where(stream_seq), first_line_no=1, expected_seq=expected_first
        )

    # Appending

    def append(
        self,
        events: Sequence[EventBase],
        *,
        expected_seq: int | None = None,
        sync: object = None,
    ) -> list[Event]:
        """Append a batch atomically and return the events as stored (with seq and ts).

        ``sync`` is accepted for symmetry with ``FileLog`` and ignored: the server's durability
        applies (see the module docstring).

        Raises:
            SeqConflict: ``expected_seq`` is given and the log does not end there.
            LogError: the servers stay unreachable or without quorum for ``timeout_s``.
        """
        if not events:
            return []
        return self._call(self._append(list(events), expected_seq))

    async def _append(self, events: list[EventBase], expected_seq: int | None) -> list[Event]:
        assert self._nc is not None
        limit = max(1024, self._nc.max_payload - _HEADER_ROOM)
        parts = _split(events, limit)
        if len(parts) == 1:
            return await self._append_message(events, expected_seq, _msg_id(events))
        out: list[Event] = []
        base = uuid.uuid4().hex
        for i, part in enumerate(parts):
            expect = expected_seq if i == 0 else None
            out.extend(await self._append_message(part, expect, f"{base}-{i}"))
        return out

    async def _append_message(
        self, events: list[EventBase], expected_seq: int | None, msg_id: str
    ) -> list[Event]:
        assert self._js is not None
        js = self._js
        tail = self._tail
        is_fresh = False
        uncertain_after: int | None = None  # stream seq after which our message may already sit
        stamped: list[Event] = []
        payload = b""
        sent_for: tuple[int, int] | None = None
        deadline = time.monotonic() + self.timeout_s
        delay = 0.02
        while True:
            try:
                if tail is None:
                    tail = await self._fetch_tail()
                    is_fresh = True
                sseq, eseq = tail
                if expected_seq is not None and expected_seq != eseq:
                    if not is_fresh:
                        tail = None
                        continue
                    raise SeqConflict(expected_seq, eseq)
                if sent_for != tail:
                    fresh = await self._dedupe(events, sseq)
                    if not fresh:
                        return self._answer(events, [])
                    now = self._clock()
                    stamped = [
                        msgspec.structs.replace(ev, seq=eseq + i, ts=ev.ts or now)  # type: ignore[misc]
                        for i, ev in enumerate(fresh, start=1)
                    ]
                    payload = b"".join(frame(e) for e in stamped)
                    sent_for = tail
                headers = {_EXPECTED_LAST_SEQ: str(sseq), _MSG_ID: msg_id}
                ack = await js.publish(
                    self.subject, payload, timeout=self.request_timeout_s, headers=headers
                )
            except nats.js.errors.APIError as exc:
                if exc.err_code != _ERR_WRONG_LAST_SEQ:
                    if isinstance(exc, _NO_QUORUM):
                        uncertain_after = _min_opt(uncertain_after, sent_for)
                        delay = await self._pause(exc, deadline, delay)
                        continue
                    raise LogError(
                        f"NATS refused an append to {self.target.display}: {_describe(exc)}"
                    ) from exc
                tail = await self._retrying("read the log's end", self._fetch_tail)
                is_fresh = True
                if uncertain_after is not None:
                    # An earlier attempt may have been stored with its acknowledgement lost and
                    # the duplicate window passed: look for our message id before retrying.
                    mine = await self._find_msg_id(msg_id, uncertain_after, tail[0])
                    if mine is not None:
                        return self._answer(events, mine)
                if expected_seq is not None:
                    raise SeqConflict(expected_seq, tail[1]) from exc
                continue
            except _TRANSPORT as exc:
                # Outcome unknown: republish the same bytes with the same id. If the first try was
                # stored the server answers "duplicate"; if not, this one is stored.
                uncertain_after = _min_opt(uncertain_after, sent_for)
                delay = await self._pause(exc, deadline, delay)
                continue
            if ack.duplicate:
                stored = self._decode(ack.seq, await self._get(ack.seq), None)
                return self._answer(events, stored)
            self._tail = (ack.seq, stamped[-1].seq)
            self._note_keys(ack.seq, sseq, stamped)
            return self._answer(events, stamped)

    async def _pause(self, exc: Exception, deadline: float, delay: float) -> float:
        if self._nc is None or self._nc.is_closed:
            raise LogError(f"the NATS log {self.target.display} is closed") from exc
        if time.monotonic() + delay > deadline:
            raise LogError(
                f"cannot append to {self.target.display} for {self.timeout_s:g} s "
                f"({_describe(exc)}): the servers are unreachable or the stream has no quorum; "
                f"the append may or may not be stored; bring the nodes back and retry (an "
                f"idempotency key makes the retry safe)"
            ) from exc
        await asyncio.sleep(delay)
        return min(delay * 2, 0.5)

    def _answer(self, events: Sequence[EventBase], stored: Sequence[Event]) -> list[Event]:
        """Map each requested event to its stored version.

        ``stored`` holds what this call published (keyless events in order, first use of each new
        key); keys it does not hold were already in the log.
        """
        keyless = iter([e for e in stored if e.key is None])
        by_key = {e.key: e for e in stored if e.key is not None}
        out: list[Event] = []
        for ev in events:
            if ev.key is None:
                out.append(next(keyless))
            else:
                out.append(by_key.get(ev.key) or self._keys[ev.key])
        return out

    async def _dedupe(self, events: list[EventBase], upto: int) -> list[EventBase]:
        """Return the events of a batch still to publish: keyless ones and each new key once."""
        if all(ev.key is None for ev in events):
            return events
        await self._catch_up_keys(upto)
        fresh: list[EventBase] = []
        seen: set[str] = set()
        for ev in events:
            if ev.key is not None:
                if ev.key in self._keys or ev.key in seen:
                    continue
                seen.add(ev.key)
            fresh.append(ev)
        return fresh

    async def _catch_up_keys(self, upto: int) -> None:
        assert self._keys_lock is not None
        async with self._keys_lock:
            if self._keys_upto >= upto:
                return
            source = _Source(self, self._keys_upto)
            try:
                while self._keys_upto < upto:
                    raw = await source.take(upto, wait=self.request_timeout_s)
                    for sseq, data in raw:
                        for ev in self._decode(sseq, data, None):
                            if ev.key is not None:
                                self._keys.setdefault(ev.key, ev)
                        self._keys_upto = max(self._keys_upto, sseq)
            finally:
                await source.close()

    def _note_keys(self, stream_seq: int, prev: int, stamped: list[Event]) -> None:
        if self._keys_upto == prev:
            for ev in stamped:
                if ev.key is not None:
                    self._keys.setdefault(ev.key, ev)
            self._keys_upto = stream_seq

    async def _find_msg_id(self, msg_id: str, after: int, upto: int) -> list[Event] | None:
        assert self._js is not None
        for s in range(after + 1, upto + 1):
            msg = await self._js._jsm.get_msg(self.target.stream, seq=s)
            if (msg.headers or {}).get(_MSG_ID) == msg_id:
                return self._decode(s, msg.data or b"", None)
        return None

    # Reading

    def last_seq(self) -> int:
        """Return the seq of the last stored event (0 for an empty log)."""
        return self._call(self._retrying("read the log's end", self._fetch_tail))[1]

    def reader(self, after: int = 0) -> NatsReader:
        """Return a cursor that yields each record after ``after`` once, in order."""
        return NatsReader(self, after)

    def read(self, after: int = 0) -> Iterator[Event]:
        """Yield every event with seq > ``after`` stored when the read reaches it."""
        reader = self.reader(after)
        try:
            while batch := reader.poll():
                yield from batch
        finally:
            reader.close()

    def subscribe(
        self, after: int = 0, *, stop: threading.Event | None = None, poll_s: float = 0.5
    ) -> Iterator[Event]:
        """Yield events after ``after`` as they are appended, until ``stop`` is set.

        Events arrive on an ordered push consumer; every ``poll_s`` without one, the subscriber
        compares its position with the stream's end and re-subscribes if it fell behind, so a lost
        consumer costs latency, never an event.
        """
        reader = self.reader(after)
        try:
            while stop is None or not stop.is_set():
                yield from reader.wait(poll_s)
        finally:
            reader.close()

    async def asubscribe(
        self, after: int = 0, *, stop: _AsyncStop | None = None, poll_s: float = 0.5
    ) -> AsyncIterator[Event]:
        """Async twin of ``subscribe``; ``stop`` is an ``asyncio.Event`` or ``anyio.Event``."""
        reader = self.reader(after)
        try:
            while stop is None or not stop.is_set():
                fut = asyncio.run_coroutine_threadsafe(reader._await(poll_s), self._loop)
                for ev in await asyncio.wrap_future(fut):
                    yield ev
        finally:
            reader.close()

    def on_append(self, ring: Callable[[], None]) -> Callable[[], None]:
        """Call ``ring()`` after each message stored from now on; return a function that stops it.

        A doorbell, as the folder watch is for the file log: a hint that costs latency when missed,
        never an event, because readers read from their own position. Only headers travel (an
        ordered, headers-only push consumer that starts at the stream's end). ``ring`` runs on the
        log's private thread, so it must only hand the news on (``loop.call_soon_threadsafe``,
        ``threading.Event.set``).
        """
        sub = self._call(self._retrying("subscribe", functools.partial(self._ring_sub, ring)))

        def cancel() -> None:
            if not self._closed:
                try:
                    self._call(_unsubscribe(sub), timeout=self.request_timeout_s + 5)
                except LogError:
                    pass

        return cancel

    async def _ring_sub(self, ring: Callable[[], None]) -> JetStreamContext.PushSubscription:
        async def rang(_msg: Msg) -> None:
            ring()

        assert self._js is not None
        return await self._js.subscribe(
            self.subject,
            stream=self.target.stream,
            cb=rang,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
            headers_only=True,
            idle_heartbeat=2.0,
        )

    # Integrity

    def verify(self) -> VerifyReport:
        """Check every message: checksums, decoding, dense seq, and no stream gaps."""
        return self._call(self._verify(), timeout=None if self._closed else 3600)

    def repair(self) -> RepairReport:
        """Report that there is nothing to cut: JetStream stores each message whole or not at all.

        Damage inside a stored message (``verify`` lists it) is not a torn tail; restore the
        stream from a replica or a backup.
        """
        return RepairReport(removed_bytes=0, saved_to="", segment=self.target.display)

    async def _verify(self) -> VerifyReport:
        info = await self._retrying(
            "read the stream's state", functools.partial(self._js_info, self.target.stream)
        )
        tail = (int(info.state.last_seq), 0)
        problems: list[Problem] = []
        source = _Source(self, 0)
        records = 0
        last = 0
        expected = 1
        try:
            while source.sseq < tail[0]:
                for sseq, data in await source.take(tail[0], wait=self.request_timeout_s):
                    if _foreign(data):
                        problems.append(Problem(self._where(sseq), 1, _FOREIGN))
                        continue
                    lines = data.split(b"\n")
                    if lines[-1] != b"":
                        problems.append(Problem(self._where(sseq), len(lines), "no final newline"))
                    for i, line in enumerate(lines[:-1], start=1):
                        problem = check_line(line)
                        if not problem:
                            try:
                                got = decode(line).seq
                            except msgspec.DecodeError as exc:
                                problem = f"not an event ({exc})"
                        if problem:
                            problems.append(Problem(self._where(sseq), i, problem))
                            expected += 1
                            continue
                        if got != expected:
                            problems.append(
                                Problem(
                                    self._where(sseq), i, f"seq {got} where {expected} was expected"
                                )
                            )
                        expected = got + 1
                        last = got
                        records += 1
        except LogCorrupt as exc:
            problems.append(Problem(exc.path, exc.line, exc.problem))
        finally:
            await source.close()
        return VerifyReport(
            segments=tail[0], records=records, last_seq=last, problems=tuple(problems)
        )


def _min_opt(current: int | None, sent_for: tuple[int, int] | None) -> int | None:
    if sent_for is None:
        return current
    return sent_for[0] if current is None else min(current, sent_for[0])


def _msg_id(events: Sequence[EventBase]) -> str:
    """A lone keyed event is de-duplicated by its key; anything else by an id per call."""
    if len(events) == 1 and events[0].key is not None:
        return "key-" + hashlib.sha256(events[0].key.encode()).hexdigest()[:40]
    return uuid.uuid4().hex


def _split(events: list[EventBase], limit: int) -> list[list[EventBase]]:
    """Cut a batch into parts whose records fit one message (measured with seqs unstamped)."""
    parts: list[list[EventBase]] = [[]]
    size = 0
    for ev in events:
        n = len(frame(ev)) + 40  # room for the stamped seq and ts
        if n > limit:
            raise LogError(
                f"one {type(ev).__name__} event needs {n} bytes, more than the NATS server's "
                f"max_payload allows ({limit}); shrink the event or raise max_payload"
            )
        if size + n > limit and parts[-1]:
            parts.append([])
            size = 0
        parts[-1].append(ev)
        size += n
    return parts


async def _unsubscribe(sub: JetStreamContext.PushSubscription) -> None:
    try:
        await sub.unsubscribe()
    except (nats.errors.Error, OSError):
        pass


_FOREIGN = (
    "not a swarmlog message (another client published on the log's subject); readers and "
    "writers skip it, find and stop that publisher"
)


def _foreign(data: bytes) -> bool:
    """Whether a message is not swarmlog's: its first line has no record framing at all.

    Readers and writers skip such a message (``verify`` lists it) instead of halting the log for
    good: the stream denies deletes, so nobody could remove it. A swarmlog record that is damaged
    keeps its checksum field and is still reported as corrupt. Runs on every message read, so
    it looks at the framing only: no checksum, no copy of the rest of the message.
    """
    end = data.find(b"\n")
    return not framed(data if end < 0 else data[:end])


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.replace("\n", " ")[:200]


# Cursors


class _Source:
    """Raw messages after a stream seq, from direct gets or an ordered push consumer.

    Lives on the log's event loop. A consumer that stalls or skips is replaced, starting after the
    last message taken, so a lost consumer costs latency, never a message.
    """

    def __init__(self, log: NatsLog, after_stream_seq: int) -> None:
        self.log = log
        self.sseq = after_stream_seq
        self._sub: JetStreamContext.PushSubscription | None = None
        log._sources.add(self)

    async def _subscribe(self) -> JetStreamContext.PushSubscription:
        await self._drop_sub()
        js = self.log._js
        assert js is not None
        sub = await js.subscribe(
            self.log.subject,
            stream=self.log.target.stream,
            ordered_consumer=True,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self.sseq + 1
            ),
            idle_heartbeat=2.0,
        )
        self._sub = sub
        return sub

    async def _drop_sub(self) -> None:
        if self._sub is not None:
            sub, self._sub = self._sub, None
            try:
                await sub.unsubscribe()
            except (nats.errors.Error, OSError):
                pass

    async def close(self) -> None:
        await self._drop_sub()
        self.log._sources.discard(self)

    async def take(self, target: int | None, *, wait: float) -> list[tuple[int, bytes]]:
        """Return messages after ``self.sseq``.

        With a ``target`` stream seq: up to it (at most ``_CHUNK_MSGS``), retrying stalls until the
        log's timeout. Without one: whatever arrives within ``wait`` (empty if nothing does).
        """
        if target is not None:
            if target <= self.sseq:
                return []
            want = min(target, self.sseq + _CHUNK_MSGS)
            if want - self.sseq <= _SMALL_RANGE and self._sub is None:
                got = await self.log._retrying(
                    "read the log", functools.partial(self.log._get_many, self.sseq + 1, want)
                )
                self.sseq = want
                return got
            return await self._consume(want, wait=wait, strict=True)
        return await self._consume(None, wait=wait, strict=False)

    async def _consume(
        self, want: int | None, *, wait: float, strict: bool
    ) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        deadline = time.monotonic() + (self.log.timeout_s if strict else wait)
        sub = self._sub
        if sub is None:
            sub = await self.log._retrying("subscribe", self._subscribe)
        while want is None or self.sseq < want:
            if out and want is None and sub.pending_msgs == 0:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if strict:
                    raise LogError(
                        f"reading {self.log.target.display} stalled at stream seq {self.sseq} "
                        f"for {self.log.timeout_s:g} s; check the servers and retry"
                    )
                break
            try:
                msg = await sub.next_msg(timeout=min(remaining, wait, 1.0))
            except nats.errors.TimeoutError:
                if strict or not out:
                    sub = await self._maybe_resubscribe(sub)
                continue
            meta = msg.metadata
            s = int(meta.sequence.stream)
            if s <= self.sseq:
                continue  # delivered again after a consumer reset
            if s != self.sseq + 1:
                # The consumer skipped: fetch the gap directly (a message that is really missing
                # raises LogCorrupt) and carry on with this consumer.
                first = self.sseq + 1
                out.extend(
                    await self.log._retrying(
                        "read the log", functools.partial(self.log._get_many, first, s - 1)
                    )
                )
            out.append((s, msg.data))
            self.sseq = s
        return out

    async def _maybe_resubscribe(
        self, sub: JetStreamContext.PushSubscription
    ) -> JetStreamContext.PushSubscription:
        """After a quiet spell, re-create the consumer if the stream has moved past us."""
        try:
            tail = await self.log._fetch_tail()
        except (TimeoutError, nats.errors.Error):
            return sub
        if tail[0] > self.sseq and sub.pending_msgs == 0:
            return await self.log._retrying("subscribe", self._subscribe)
        return sub


class NatsReader:
    """A cursor over a ``NatsLog``: ``poll()`` returns the events appended since the last poll."""

    def __init__(self, log: NatsLog, after: int) -> None:
        self.log = log
        self.after = after
        self._last = after  # last event seq returned or skipped
        self._next: int | None = None  # event seq the next message must start with
        self._source: _Source | None = None

    @property
    def position(self) -> int:
        """The seq of the last event returned (or ``after`` before any)."""
        return self._last

    async def _locate(self) -> _Source:
        """Find the message holding event ``after + 1`` (binary search over stream seqs)."""
        if self._source is not None:
            return self._source
        log = self.log
        start = 0
        if self.after > 0:
            tail = await log._retrying("read the log's end", log._fetch_tail)
            lo, hi = 1, tail[0]
            if tail[1] <= self.after:
                start = tail[0]  # nothing to skip inside old messages
                self._next = tail[1] + 1
            else:
                while lo < hi:  # last message whose first event seq <= after + 1
                    mid = probe = (lo + hi + 1) // 2
                    data = await log._retrying("read the log", functools.partial(log._get, mid))
                    while _foreign(data) and probe < hi:  # judge by the next swarmlog message
                        probe += 1
                        data = await log._retrying(
                            "read the log", functools.partial(log._get, probe)
                        )
                    if _foreign(data):  # only foreign messages from mid to hi
                        hi = mid - 1
                        continue
                    line = data.split(b"\n", 1)[0]
                    if problem := check_line(line):
                        raise LogCorrupt(log._where(probe), 1, problem)
                    first = line_seq(line)
                    if first <= self.after + 1:
                        lo = probe
                    else:
                        hi = mid - 1
                start = lo - 1
        self._source = _Source(log, start)
        return self._source

    def _accept(self, raw: list[tuple[int, bytes]]) -> list[Event]:
        out: list[Event] = []
        for sseq, data in raw:
            events = self.log._decode(sseq, data, self._next)
            if not events:
                continue
            self._next = events[-1].seq + 1
            if events[0].seq <= self.after:
                events = [e for e in events if e.seq > self.after]
            out.extend(events)
        if out:
            self._last = out[-1].seq
        return out

    async def _poll(self) -> list[Event]:
        source = await self._locate()
        tail = await self.log._retrying("read the log's end", self.log._fetch_tail)
        raw = await source.take(tail[0], wait=self.log.request_timeout_s)
        return self._accept(raw)

    async def _await(self, wait: float) -> list[Event]:
        source = await self._locate()
        return self._accept(await source.take(None, wait=wait))

    def poll(self) -> list[Event]:
        """Return events stored since the previous poll (possibly none)."""
        return self.log._call(self._poll())

    def wait(self, timeout: float) -> list[Event]:
        """Return the next events to arrive, waiting up to ``timeout`` for the first one."""
        return self.log._call(self._await(timeout))

    def close(self) -> None:
        """Release the server-side consumer, if any (the log's ``close`` does it too)."""
        if self._source is not None and not self.log._closed:
            source, self._source = self._source, None
            try:
                self.log._call(source.close())
            except LogError:
                pass


# Archiving


def archive_to_files(
    log: NatsLog, directory: str | os.PathLike[str], *, segment_bytes: int = 64 << 20
) -> int:
    """Copy the stream into sealed segment files that ``FileLog(directory)`` reads and verifies.

    The records are the stream's bytes, unchanged. Archiving again appends only what is new, in new
    segments, after checking that the folder's last record is the stream's record at that seq.
    Returns the number of events copied.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    have = 0
    segments = list_segments(folder)
    if segments:
        last_line = segments[-1][1].read_bytes().rstrip(b"\n").rsplit(b"\n", 1)[-1]
        if check_line(last_line):
            raise LogError(
                f"{segments[-1][1]}: the archive's last record is damaged; run 'swarmlog verify' "
                f"on {folder} or archive into an empty folder"
            )
        have = line_seq(last_line)
        stored = next(iter(log.read(after=have - 1)), None)
        if stored is None or frame(stored).rstrip(b"\n") != last_line:
            raise LogError(
                f"the archive in {folder} ends at seq {have} with a record the stream "
                f"{log.target.display} does not hold; archive into an empty folder"
            )
    copied = 0
    buf: list[bytes] = []
    size = 0
    first = have + 1
    for ev in log.read(after=have):
        line = frame(ev)
        if buf and size + len(line) > segment_bytes:
            _write_sealed(folder, first, buf)
            first += len(buf)
            buf, size = [], 0
        buf.append(line)
        size += len(line)
        copied += 1
    if buf:
        _write_sealed(folder, first, buf)
    return copied


def _write_sealed(folder: Path, first_seq: int, lines: list[bytes]) -> None:
    path = folder / f"{first_seq:012d}{SEGMENT_SUFFIX}"
    tmp = folder / f".{path.name}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(b"".join(lines))
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    os.replace(tmp, path)
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
