"""A simulated Ollama server on loopback: slots, loads, keep-alive, VRAM budget, faults.

It speaks Ollama's HTTP protocol (PROTOCOLS.md) over real sockets, so a simulated run goes through
the real provider, httpx, timeouts and retries. Simulated time runs ``time_scale`` times as fast as
real time would be slow: one simulated second lasts ``time_scale`` real seconds. Timing fields are
reported in real (scaled) nanoseconds, consistent with the client's clock, unless
``report_sim_time`` asks for simulated ones.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import itertools
import math
import random
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import msgspec

from swarmlog.sim.http import HttpServer, Request, Response
from swarmlog.sim.models import (
    Faults,
    ReplyFn,
    SimModel,
    default_reply,
    parse_keep_alive,
    token_count,
)
from swarmlog.sim.perf import decode_step_s, kv_cache_bytes, kv_shape, prefill_s

__all__ = ["BUSY_MESSAGE", "GIB", "SimServer", "SimStats"]

BUSY_MESSAGE = "server busy, please try again.  maximum pending requests exceeded"
GIB = 1024**3
_MAX_CHUNKS = 16
_FOREVER = timedelta(days=365 * 290)


class SimStats:
    """Counters a test or a scenario can read: loads, evictions, peak busy slots, faults."""

    def __init__(self) -> None:
        self.requests: dict[str, int] = {}
        self.loads: list[str] = []
        self.evictions: list[str] = []
        self.max_busy: dict[str, int] = {}
        self.faults: list[tuple[str, str]] = []
        self.rejected: int = 0
        self.abandoned: int = 0  # requests whose client went away before the reply was done
        self.deaths: int = 0


class _HttpError(Exception):
    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


class _Drop(Exception):
    """Raised to drop the connection mid-stream (an injected fault)."""


class _Resident:
    """A loaded model."""

    def __init__(self, model: SimModel, num_ctx: int, size: int, size_vram: int) -> None:
        self.model = model
        self.num_ctx = num_ctx
        self.size = size
        self.size_vram = size_vram
        self.slots = asyncio.Semaphore(model.parallel)
        self.refs = 0  # requests committed to it (waiting for a slot or running)
        self.busy = 0
        self.keep_alive_s = model.keep_alive_s if model.keep_alive_s >= 0 else math.inf
        self.expires = math.inf  # simulated time; only meaningful while refs == 0

    @property
    def spill(self) -> float:
        """Return the slowdown from running partly on the CPU (1.0 when all in VRAM)."""
        on_cpu = 1.0 - self.size_vram / self.size if self.size else 0.0
        return 1.0 + 10.0 * on_cpu


class _State:
    """Everything a server forgets when it dies."""

    def __init__(self) -> None:
        self.resident: dict[str, _Resident] = {}
        self.pending_loads = 0
        self.load_lock = asyncio.Lock()
        self._changed = asyncio.Event()

    def notify(self) -> None:
        """Wake everything waiting for a model to go idle or unload."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_change(self) -> None:
        """Wait for the next ``notify``."""
        await self._changed.wait()


class _Done(msgspec.Struct):
    text: str
    done_reason: str
    prompt_tokens: int
    completion_tokens: int
    total_s: float
    load_s: float
    prefill_s: float
    decode_s: float


Emit = Callable[[str], Awaitable[None]]


class SimServer:
    """One simulated Ollama server on 127.0.0.1.

    Use it from async code (``async with SimServer(...) as s``, or ``astart``/``astop``) or from
    sync code, where it runs in a background thread with its own loop (``with SimServer(...)``,
    or ``start``/``stop``). ``url`` is its base URL once started.

    Args:
        models: what it can load (``/api/tags``).
        vram_bytes: the VRAM budget; a load that does not fit evicts idle models, shortest
            keep-alive first; a model larger than the whole budget spills to the CPU (slower).
        disk_bytes_s: read speed for a load (load time = size / speed, simulated seconds).
        time_scale: real seconds per simulated second.
        max_queue: requests waiting for a load beyond this are refused with 503.
        max_loaded: models resident at once.
        reply_fn: produces each reply; the default echoes the last user message as JSON.
        faults: per model name, or ``"*"`` for every model.
        die_at_s: simulated seconds after start when the server dies (stops listening and drops
            every connection); ``revive_after_s`` later it listens again, empty, on the same port.
        seed: makes fault draws deterministic.
    """

    def __init__(
        self,
        models: Sequence[SimModel],
        *,
        vram_bytes: int = 80 * GIB,
        disk_bytes_s: float = 2e9,
        time_scale: float = 1.0,
        max_queue: int = 512,
        max_loaded: int = 3,
        reply_fn: ReplyFn | None = None,
        faults: Mapping[str, Faults] | None = None,
        die_at_s: float | None = None,
        revive_after_s: float | None = None,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        version: str = "0.12.6",
        report_sim_time: bool = False,
    ) -> None:
        self.models = {m.name: m for m in models}
        self.vram_bytes = vram_bytes
        self.disk_bytes_s = disk_bytes_s
        self.time_scale = time_scale
        self.max_queue = max_queue
        self.max_loaded = max_loaded
        self.reply_fn: ReplyFn = reply_fn or default_reply
        self.faults = dict(faults or {})
        self.die_at_s = die_at_s
        self.revive_after_s = revive_after_s
        self.seed = seed
        self.version = version
        self.report_sim_time = report_sim_time
        self.stats = SimStats()
        self._http = HttpServer(self._route, host=host, port=port)
        self._state: _State | None = None
        self._t0 = 0.0
        self._wall0 = datetime.now(UTC)
        self._seen: dict[tuple[str, str], int] = {}
        self._ids = itertools.count(1)
        self._timers: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle

    @property
    def url(self) -> str:
        """Return the base URL, e.g. ``http://127.0.0.1:40123``."""
        return self._http.url

    @property
    def port(self) -> int:
        """Return the port it listens on (chosen at start when 0 was asked)."""
        return self._http.port

    @property
    def is_up(self) -> bool:
        """Tell whether it accepts connections."""
        return self._http.is_serving

    def sim_now(self) -> float:
        """Return simulated seconds since start."""
        return (asyncio.get_running_loop().time() - self._t0) / self.time_scale

    async def astart(self) -> None:
        """Start listening on the running loop."""
        loop = asyncio.get_running_loop()
        self._t0 = loop.time()
        self._wall0 = datetime.now(UTC)
        self._state = _State()
        await self._http.start()
        if self.die_at_s is not None:
            self._timers.append(asyncio.ensure_future(self._die_later(self.die_at_s)))

    async def astop(self) -> None:
        """Stop listening, drop connections and cancel timers."""
        for timer in self._timers:
            timer.cancel()
        for timer in self._timers:
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        self._timers.clear()
        await self._http.stop()
        self._state = None

    async def akill(self) -> None:
        """Die now: stop accepting, drop every connection, forget every loaded model."""
        self.stats.deaths += 1
        await self._http.stop()
        self._state = None

    async def arevive(self) -> None:
        """Listen again on the same port, with nothing loaded (a restarted server)."""
        self._state = _State()
        await self._http.start()

    async def _die_later(self, at_s: float) -> None:
        await self._sleep(at_s - self.sim_now())
        await self.akill()
        if self.revive_after_s is not None:
            await self._sleep(self.revive_after_s)
            await self.arevive()

    async def __aenter__(self) -> SimServer:
        await self.astart()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()

    def start(self, timeout_s: float = 10.0) -> SimServer:
        """Start in a background thread with its own event loop; return once it listens."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=f"sim-server-{id(self):x}", daemon=True)
        self._thread.start()
        ready.wait(timeout_s)
        try:
            self._call(self.astart(), timeout_s)
        except BaseException:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(timeout_s)
            loop.close()
            self._loop = self._thread = None
            raise
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the background server and its thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self._call(self.astop(), timeout_s)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout_s)
            loop.close()
            self._loop = self._thread = None

    def kill(self, timeout_s: float = 10.0) -> None:
        """Make the background server die now (see ``akill``)."""
        self._call(self.akill(), timeout_s)

    def revive(self, timeout_s: float = 10.0) -> None:
        """Bring the background server back (see ``arevive``)."""
        self._call(self.arevive(), timeout_s)

    def _call(self, coro: Awaitable[None], timeout_s: float) -> None:
        if self._loop is None:
            raise RuntimeError("the simulated server was not started with start()")
        future: concurrent.futures.Future[None] = asyncio.run_coroutine_threadsafe(
            _await(coro), self._loop
        )
        future.result(timeout_s)

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # Time

    async def _sleep(self, sim_s: float) -> None:
        if sim_s > 0:
            await asyncio.sleep(sim_s * self.time_scale)

    def _report_ns(self, real_s: float) -> int:
        return int(real_s * 1e9 / (self.time_scale if self.report_sim_time else 1.0))

    def _wall_at(self, sim_t: float) -> str:
        """Return the RFC 3339 wall time at which simulated time ``sim_t`` falls."""
        if math.isinf(sim_t):
            when = self._wall0 + _FOREVER
        else:
            scale = 1.0 if self.report_sim_time else self.time_scale
            when = self._wall0 + timedelta(seconds=sim_t * scale)
        return when.isoformat().replace("+00:00", "Z")

    # Routing

    async def _route(self, req: Request, resp: Response) -> None:
        key = (req.method, req.path)
        try:
            if key in (("GET", "/"), ("HEAD", "/")):
                await resp.send(200, "Ollama is running", content_type="text/plain; charset=utf-8")
            elif key == ("GET", "/api/version"):
                await resp.send_json(200, {"version": self.version})
            elif key == ("GET", "/api/tags"):
                await resp.send_json(200, {"models": [self._tag(m) for m in self.models.values()]})
            elif key == ("GET", "/api/ps"):
                await resp.send_json(200, {"models": self._ps()})
            elif key == ("POST", "/api/show"):
                await self._show(req, resp)
            elif key == ("POST", "/api/chat"):
                await self._chat_ollama(req, resp)
            elif key == ("POST", "/v1/chat/completions"):
                await self._chat_openai(req, resp)
            elif key == ("GET", "/v1/models"):
                data = [
                    {"id": n, "object": "model", "created": 0, "owned_by": "library"}
                    for n in self.models
                ]
                await resp.send_json(200, {"object": "list", "data": data})
            else:
                await resp.send(404, "404 page not found", content_type="text/plain")
        except _Drop:
            resp.abort()
        except _HttpError as exc:
            if not resp.is_started:
                await resp.send_json(exc.status, {"error": exc.message}, headers=exc.headers)

    def _details(self, m: SimModel) -> dict[str, Any]:
        quant = {16: "F16", 8: "Q8_0"}.get(m.quant_bits, f"Q{m.quant_bits}_K_M")
        return {
            "parent_model": "",
            "format": "gguf",
            "family": "qwen2",
            "families": ["qwen2"],
            "parameter_size": f"{m.params_b:.1f}B",
            "quantization_level": quant,
        }

    def _digest(self, m: SimModel) -> str:
        return hashlib.sha256(m.name.encode()).hexdigest()

    def _tag(self, m: SimModel) -> dict[str, Any]:
        return {
            "name": m.name,
            "model": m.name,
            "modified_at": self._wall0.isoformat().replace("+00:00", "Z"),
            "size": m.size_bytes,
            "digest": self._digest(m),
            "details": self._details(m),
            "capabilities": ["completion"],
        }

    def _ps(self) -> list[dict[str, Any]]:
        state = self._state
        if state is None:
            return []
        now = self.sim_now()
        self._expire(state, now)
        out = []
        for r in state.resident.values():
            expiry = r.expires if r.refs == 0 else now + r.keep_alive_s
            out.append(
                {
                    "name": r.model.name,
                    "model": r.model.name,
                    "size": r.size,
                    "digest": self._digest(r.model),
                    "details": self._details(r.model),
                    "expires_at": self._wall_at(expiry),
                    "size_vram": r.size_vram,
                    "context_length": r.num_ctx,
                }
            )
        return out

    async def _show(self, req: Request, resp: Response) -> None:
        body = _json_body(req)
        name = str(body.get("model") or body.get("name") or "")
        m = self.models.get(name)
        if m is None:
            await resp.send_json(404, {"error": f"model '{name}' not found"})
            return
        shape = kv_shape(m.params_b)
        await resp.send_json(
            200,
            {
                "license": "",
                "modelfile": f"FROM {m.name}\n",
                "parameters": f"num_ctx {m.context_length}",
                "template": "{{ .Prompt }}",
                "details": self._details(m),
                "model_info": {
                    "general.architecture": "qwen2",
                    "general.parameter_count": int(m.params_b * 1e9),
                    "qwen2.block_count": shape.layers,
                    "qwen2.attention.head_count_kv": shape.kv_heads,
                    "qwen2.attention.key_length": shape.head_dim,
                    "qwen2.context_length": max(m.context_length, 32768),
                },
                "capabilities": ["completion"],
                "modified_at": self._wall0.isoformat().replace("+00:00", "Z"),
            },
        )

    # Chat endpoints

    async def _chat_ollama(self, req: Request, resp: Response) -> None:
        body = _json_body(req)
        name = str(body.get("model", ""))
        is_stream = body.get("stream", True) is not False
        options = dict(body.get("options") or {})
        if body.get("format") is not None:
            options["format"] = body["format"]
        messages = list(body.get("messages") or [])

        async def emit(piece: str) -> None:
            if not resp.is_started:
                await resp.start(200, content_type="application/x-ndjson")
            line = {
                "model": name,
                "created_at": _rfc3339_now(),
                "message": {"role": "assistant", "content": piece},
                "done": False,
            }
            await resp.write(msgspec.json.encode(line) + b"\n")

        try:
            done = await self._generate(
                name, messages, options, body.get("keep_alive"), emit if is_stream else None
            )
        except _HttpError as exc:
            if resp.is_started:
                await resp.write(msgspec.json.encode({"error": exc.message}) + b"\n")
                await resp.end()
            else:
                await resp.send_json(exc.status, {"error": exc.message}, headers=exc.headers)
            return
        final = {
            "model": name,
            "created_at": _rfc3339_now(),
            "message": {"role": "assistant", "content": "" if is_stream else done.text},
            "done_reason": done.done_reason,
            "done": True,
            "total_duration": self._report_ns(done.total_s),
            "load_duration": self._report_ns(done.load_s),
            "prompt_eval_count": done.prompt_tokens,
            "prompt_eval_duration": self._report_ns(done.prefill_s),
            "eval_count": done.completion_tokens,
            "eval_duration": self._report_ns(done.decode_s),
        }
        if not is_stream:
            await resp.send_json(200, final)
            return
        if not resp.is_started:
            await resp.start(200, content_type="application/x-ndjson")
        await resp.write(msgspec.json.encode(final) + b"\n")
        await resp.end()

    async def _chat_openai(self, req: Request, resp: Response) -> None:
        body = _json_body(req)
        name = str(body.get("model", ""))
        is_stream = bool(body.get("stream", False))
        wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        options: dict[str, Any] = {
            k: body[k] for k in ("temperature", "seed") if body.get(k) is not None
        }
        if body.get("max_tokens") is not None:
            options["num_predict"] = body["max_tokens"]
        fmt = (body.get("response_format") or {}).get("type")
        if fmt in ("json_object", "json_schema"):
            options["format"] = "json"
        messages = list(body.get("messages") or [])
        cid = f"chatcmpl-{next(self._ids)}"
        created = int(datetime.now(UTC).timestamp())

        def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
            obj = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": name,
                "system_fingerprint": "fp_ollama",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return b"data: " + msgspec.json.encode(obj) + b"\n\n"

        async def emit(piece: str) -> None:
            if not resp.is_started:
                await resp.start(200, content_type="text/event-stream")
            await resp.write(chunk({"role": "assistant", "content": piece}, None))

        try:
            done = await self._generate(name, messages, options, None, emit if is_stream else None)
        except _HttpError as exc:
            error = {"message": exc.message, "type": "api_error", "param": None, "code": None}
            if resp.is_started:
                await resp.write(b"data: " + msgspec.json.encode({"error": error}) + b"\n\n")
                await resp.end()
            else:
                await resp.send_json(exc.status, {"error": error}, headers=exc.headers)
            return
        usage = {
            "prompt_tokens": done.prompt_tokens,
            "completion_tokens": done.completion_tokens,
            "total_tokens": done.prompt_tokens + done.completion_tokens,
        }
        if not is_stream:
            await resp.send_json(
                200,
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": name,
                    "system_fingerprint": "fp_ollama",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": done.text},
                            "finish_reason": done.done_reason,
                        }
                    ],
                    "usage": usage,
                },
            )
            return
        if not resp.is_started:
            await resp.start(200, content_type="text/event-stream")
        await resp.write(chunk({"role": "assistant", "content": ""}, done.done_reason))
        if wants_usage:
            obj = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": name,
                "system_fingerprint": "fp_ollama",
                "choices": [],
                "usage": usage,
            }
            await resp.write(b"data: " + msgspec.json.encode(obj) + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.end()

    # The model: faults, load, slot, prefill, decode

    def _fault(self, name: str, messages: list[dict[str, Any]]) -> str:
        faults = self.faults.get(name) or self.faults.get("*")
        n = self.stats.requests.get(name, 0)
        self.stats.requests[name] = n + 1
        if faults is None:
            return ""
        if n < faults.fail_first:
            return "error"
        # Keyed on the content and how often it was seen, not on arrival order, so concurrent
        # requests draw the same faults in every run; a retry of the same request draws anew.
        digest = hashlib.sha256(msgspec.json.encode(messages)).hexdigest()
        seen = self._seen.get((name, digest), 0)
        self._seen[(name, digest)] = seen + 1
        key = hashlib.sha256(f"{self.seed}|{name}|{digest}|{seen}".encode()).digest()
        draw = random.Random(int.from_bytes(key[:8], "big")).random()
        return faults.pick(draw)

    async def _generate(
        self,
        name: str,
        messages: list[dict[str, Any]],
        options: dict[str, Any],
        keep_alive: object,
        emit: Emit | None,
    ) -> _Done:
        loop = asyncio.get_running_loop()
        t_start = loop.time()
        state = self._state
        if state is None:
            raise _Drop
        model = self.models.get(name)
        if model is None:
            raise _HttpError(404, f'model "{name}" not found, try pulling it first')
        fault = self._fault(name, messages)
        if fault:
            self.stats.faults.append((name, fault))
        faults = self.faults.get(name) or self.faults.get("*") or Faults()
        if fault == "error":
            raise _HttpError(500, f"llama runner process has terminated: injected fault ({name})")
        if fault == "busy":
            headers = {}
            if faults.retry_after_s is not None:
                headers["Retry-After"] = f"{faults.retry_after_s:g}"
            raise _HttpError(503, BUSY_MESSAGE, headers)
        if fault == "hang":
            await asyncio.Event().wait()  # until the client gives up or the server stops
        slow = faults.slow_factor if fault == "slow" else 1.0

        num_ctx = int(options.get("num_ctx") or model.context_length)
        ka = parse_keep_alive(keep_alive)
        try:
            resident, load_s = await self._acquire(state, model, num_ctx)
        except asyncio.CancelledError:
            self.stats.abandoned += 1
            raise
        try:
            if ka is not None:
                resident.keep_alive_s = ka
            async with resident.slots:
                resident.busy += 1
                self.stats.max_busy[name] = max(self.stats.max_busy.get(name, 0), resident.busy)
                try:
                    return await self._decode(
                        resident, messages, options, emit, slow, t_start, load_s, fault
                    )
                finally:
                    resident.busy -= 1
        except asyncio.CancelledError:
            self.stats.abandoned += 1
            raise
        finally:
            self._release(state, resident)

    async def _decode(
        self,
        r: _Resident,
        messages: list[dict[str, Any]],
        options: dict[str, Any],
        emit: Emit | None,
        slow: float,
        t_start: float,
        load_s: float,
        fault: str,
    ) -> _Done:
        loop = asyncio.get_running_loop()
        m = r.model
        try:
            text = self.reply_fn(m.name, messages, options)
        except Exception as exc:
            raise _HttpError(500, f"reply_fn failed for {m.name}: {exc!r}") from exc
        prompt_tokens = sum(token_count(str(x.get("content", ""))) for x in messages)
        limit = int(
            options.get("num_predict", -1) if options.get("num_predict") is not None else -1
        )
        done_reason = "stop"
        if 0 <= limit < token_count(text):
            text = text[: limit * 4]
            done_reason = "length"
        completion_tokens = max(1, token_count(text))

        # Sleep to deadlines rather than for durations, so that many tiny steps do not each
        # round up to the event loop's timer resolution.
        t_prefill = loop.time()
        target = t_prefill + prefill_s(m.params_b, prompt_tokens) * slow * r.spill * self.time_scale
        await _sleep_until(loop, target)
        t_decode = loop.time()
        chunks = max(1, min(_MAX_CHUNKS, completion_tokens))
        bounds = [round(i * len(text) / chunks) for i in range(chunks + 1)]
        tokens_each = completion_tokens / chunks
        for i in range(chunks):
            step = decode_step_s(m.params_b, r.busy)
            target = max(target, t_decode) + tokens_each * step * slow * r.spill * self.time_scale
            await _sleep_until(loop, target)
            piece = text[bounds[i] : bounds[i + 1]]
            if emit is not None and piece:
                await emit(piece)
                if fault == "drop":
                    raise _Drop
        t_end = loop.time()
        return _Done(
            text=text,
            done_reason=done_reason,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_s=t_end - t_start,
            load_s=load_s,
            prefill_s=t_decode - t_prefill,
            decode_s=t_end - t_decode,
        )

    # Residency: loads, keep-alive, eviction under the VRAM budget

    def _expire(self, state: _State, now: float) -> None:
        for name, r in list(state.resident.items()):
            if r.refs == 0 and r.expires <= now:
                del state.resident[name]

    def _need(self, model: SimModel, num_ctx: int) -> int:
        return model.size_bytes + kv_cache_bytes(model.params_b, num_ctx, model.parallel)

    async def _acquire(
        self, state: _State, model: SimModel, num_ctx: int
    ) -> tuple[_Resident, float]:
        """Return the resident model with a reference held, loading it first if needed."""
        loop = asyncio.get_running_loop()
        self._expire(state, self.sim_now())
        r = state.resident.get(model.name)
        if r is not None and r.num_ctx == num_ctx:
            r.refs += 1
            return r, 0.0
        if state.pending_loads >= self.max_queue:
            self.stats.rejected += 1
            raise _HttpError(503, BUSY_MESSAGE)
        state.pending_loads += 1
        t0 = loop.time()
        try:
            async with state.load_lock:
                self._expire(state, self.sim_now())
                r = state.resident.get(model.name)
                if r is not None and r.num_ctx != num_ctx:
                    # A different num_ctx reloads the model once its requests are done (Ollama).
                    await self._wait_idle(state, r)
                    self._unload(state, r)
                    r = None
                if r is None:
                    r = await self._load(state, model, num_ctx)
                r.refs += 1
                return r, loop.time() - t0
        finally:
            state.pending_loads -= 1

    async def _wait_idle(self, state: _State, r: _Resident) -> None:
        while r.refs > 0:
            await state.wait_change()

    def _unload(self, state: _State, r: _Resident) -> None:
        if state.resident.get(r.model.name) is r:
            del state.resident[r.model.name]
            self.stats.evictions.append(r.model.name)

    async def _load(self, state: _State, model: SimModel, num_ctx: int) -> _Resident:
        need = self._need(model, num_ctx)
        while True:
            self._expire(state, self.sim_now())
            used = sum(x.size_vram for x in state.resident.values())
            fits = need <= self.vram_bytes - used and len(state.resident) < self.max_loaded
            if fits or not state.resident:
                break
            idle = [x for x in state.resident.values() if x.refs == 0]
            if idle:
                victim = min(idle, key=lambda x: (x.keep_alive_s, x.expires))
                self._unload(state, victim)
                continue
            await state.wait_change()  # every resident model is busy: wait for one to idle
        size_vram = min(need, self.vram_bytes - sum(x.size_vram for x in state.resident.values()))
        await self._sleep(model.size_bytes / self.disk_bytes_s)
        r = _Resident(model, num_ctx, need, max(0, size_vram))
        state.resident[model.name] = r
        self.stats.loads.append(model.name)
        return r

    def _release(self, state: _State, r: _Resident) -> None:
        r.refs -= 1
        if r.refs == 0:
            r.expires = self.sim_now() + r.keep_alive_s
            if r.keep_alive_s == 0:
                self._unload(state, r)
        state.notify()


async def _sleep_until(loop: asyncio.AbstractEventLoop, deadline: float) -> None:
    delay = deadline - loop.time()
    await asyncio.sleep(delay if delay > 0.0005 else 0)


def _rfc3339_now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


async def _await(coro: Awaitable[None]) -> None:
    await coro


def _json_body(req: Request) -> dict[str, Any]:
    try:
        body = req.json()
    except msgspec.DecodeError as exc:
        raise _HttpError(400, f"invalid JSON body: {exc}") from exc
    if not isinstance(body, dict):
        raise _HttpError(400, "the request body must be a JSON object")
    return body
