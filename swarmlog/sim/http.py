"""A small asyncio HTTP/1.1 server for loopback: keep-alive, chunked streaming, abrupt drops.

It is enough for the simulated model servers and for protocol tests; it is not a general server.
When a client disconnects while its request is being handled, the handler is cancelled (the way
Ollama abandons a request whose client gave up).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import msgspec

__all__ = ["Handler", "HttpServer", "Request", "Response", "serve"]

_MAX_HEAD = 64 * 1024
_MAX_BODY = 64 * 1024 * 1024


class Request:
    """One parsed request: method, path, query string, lower-cased headers and the body."""

    __slots__ = ("body", "headers", "method", "path", "query")

    def __init__(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        """Decode the body as JSON (``None`` when empty)."""
        return msgspec.json.decode(self.body) if self.body else None


class Response:
    """Write one response: whole (``send``) or streamed in chunks (``start``/``write``/``end``)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self.status = 0
        self.is_started = False
        self.is_finished = False
        self.is_aborted = False

    def _head(self, status: int, headers: Mapping[str, str]) -> bytes:
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Status"
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def send(
        self,
        status: int,
        body: bytes | str = b"",
        *,
        content_type: str = "application/json; charset=utf-8",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Send a whole response with a ``Content-Length``."""
        data = body.encode() if isinstance(body, str) else body
        all_headers = {"Content-Type": content_type, "Content-Length": str(len(data))}
        all_headers.update(headers or {})
        self.status = status
        self.is_started = True
        self._writer.write(self._head(status, all_headers) + data)
        await self._writer.drain()
        self.is_finished = True

    async def send_json(
        self, status: int, obj: Any, *, headers: Mapping[str, str] | None = None
    ) -> None:
        """Send ``obj`` encoded as JSON."""
        await self.send(status, msgspec.json.encode(obj), headers=headers)

    async def start(
        self,
        status: int = 200,
        *,
        content_type: str = "application/x-ndjson",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Send the head of a chunked (streamed) response."""
        all_headers = {"Content-Type": content_type, "Transfer-Encoding": "chunked"}
        all_headers.update(headers or {})
        self.status = status
        self.is_started = True
        self._writer.write(self._head(status, all_headers))
        await self._writer.drain()

    async def write(self, data: bytes | str) -> None:
        """Send one chunk of a streamed response."""
        raw = data.encode() if isinstance(data, str) else data
        if raw:
            self._writer.write(b"%x\r\n%b\r\n" % (len(raw), raw))
            await self._writer.drain()

    async def end(self) -> None:
        """Finish a streamed response."""
        self._writer.write(b"0\r\n\r\n")
        await self._writer.drain()
        self.is_finished = True

    def abort(self) -> None:
        """Drop the connection now, mid-response (a reset, not a clean close)."""
        self.is_aborted = True
        self._writer.transport.abort()


Handler = Callable[[Request, Response], Awaitable[None]]


class HttpServer:
    """Serve ``handler`` on ``host:port`` (port 0 picks a free one) until ``stop``."""

    def __init__(self, handler: Handler, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._handler = handler
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """Return the base URL, e.g. ``http://127.0.0.1:40123``."""
        return f"http://{self.host}:{self.port}"

    @property
    def is_serving(self) -> bool:
        """Tell whether the server accepts connections."""
        return self._server is not None and self._server.is_serving()

    async def start(self) -> None:
        """Listen (again, on the same port after a ``stop``)."""
        self._server = await asyncio.start_server(
            self._on_connection, self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop every open connection, cancelling their handlers."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(writer)
        buf = bytearray()
        try:
            while True:
                request = await self._read_request(reader, buf)
                if request is None:
                    break
                response = Response(writer)
                handling = asyncio.ensure_future(self._handle(request, response))
                # Reading while the handler runs is how a client's disconnect is noticed (EOF);
                # a well-behaved HTTP/1.1 client sends nothing else until the response is done.
                watching = asyncio.ensure_future(reader.read(65536))
                try:
                    await asyncio.wait({handling, watching}, return_when=asyncio.FIRST_COMPLETED)
                except asyncio.CancelledError:
                    handling.cancel()
                    watching.cancel()
                    await asyncio.gather(handling, watching, return_exceptions=True)
                    raise
                is_gone = False
                if watching.done():
                    data = b"" if watching.exception() else watching.result()
                    is_gone = not data
                    buf += data
                else:
                    watching.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watching
                if not handling.done():
                    if is_gone:  # the client went away: abandon its request
                        handling.cancel()
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await handling
                        break
                    await handling
                if is_gone or response.is_aborted or not response.is_finished:
                    break
                if request.headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        except asyncio.CancelledError:
            # End quietly: on Python 3.11 asyncio logs a cancelled client_connected_cb task as an
            # unhandled exception (task.exception() raises), and stop() cancels these on purpose.
            pass
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    async def _read_request(self, reader: asyncio.StreamReader, buf: bytearray) -> Request | None:
        while (end := buf.find(b"\r\n\r\n")) < 0:
            if len(buf) > _MAX_HEAD:
                raise ValueError("request head too large")
            data = await reader.read(65536)
            if not data:
                return None
            buf += data
        lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        if length > _MAX_BODY:
            raise ValueError("request body too large")
        start = end + 4
        while len(buf) < start + length:
            data = await reader.read(65536)
            if not data:
                return None
            buf += data
        body = bytes(buf[start : start + length])
        del buf[: start + length]
        parts = urlsplit(target)
        return Request(method.upper(), parts.path or "/", parts.query, headers, body)

    async def _handle(self, request: Request, response: Response) -> None:
        try:
            await self._handler(request, response)
        except asyncio.CancelledError:
            raise
        except ConnectionError:
            response.is_aborted = True
        except Exception as exc:  # a bug in a handler answers 500 instead of hanging the client
            if not response.is_started:
                await response.send_json(500, {"error": f"internal error: {exc!r}"})
            else:
                response.abort()


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[str]:
    """Serve ``handler`` on a free loopback port for the ``async with`` block; yield its URL."""
    server = HttpServer(handler)
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()
