"""Ollama's native ``/api/chat`` over a shared ``httpx.AsyncClient``, streaming NDJSON."""

from __future__ import annotations

import math
import time
from typing import Any

import httpx
import msgspec

from swarmlog.errors import ProviderError
from swarmlog.providers._http import (
    decode_chunk,
    elapsed_ms,
    guarded_call,
    request_timeout,
    status_error,
)
from swarmlog.providers.base import ChatRequest, ChatResult

__all__ = ["OllamaProvider", "ollama_body"]

_NS_PER_MS = 1_000_000


class _Msg(msgspec.Struct):
    content: str = ""


class _Chunk(msgspec.Struct):
    model: str = ""
    message: _Msg | None = None
    done: bool = False
    done_reason: str = ""
    error: str | None = None
    # Integer nanoseconds and token counts for Ollama; all optional, so a compatible server
    # that writes floats or null must not fail a call whose reply is fine (read with _amount).
    total_duration: float | None = None
    load_duration: float | None = None
    prompt_eval_count: float | None = None
    prompt_eval_duration: float | None = None
    eval_count: float | None = None
    eval_duration: float | None = None


_CHUNK = msgspec.json.Decoder(_Chunk)


def _amount(value: float | None) -> float:
    """A reported duration or count: a number > 0, else 0 (absent, null, negative)."""
    return value if value is not None and math.isfinite(value) and value > 0 else 0.0


def ollama_body(req: ChatRequest, *, stream: bool = True) -> dict[str, Any]:
    """Build the ``/api/chat`` JSON body for a request."""
    options: dict[str, Any] = {"num_predict": req.max_tokens, "temperature": req.temperature}
    if req.num_ctx is not None:
        options["num_ctx"] = req.num_ctx
    if req.seed is not None:
        options["seed"] = req.seed
    body: dict[str, Any] = {
        "model": req.model,
        "messages": [{"role": m.role, "content": m.content} for m in req.messages],
        "stream": stream,
        "options": options,
    }
    if req.json_mode:
        body["format"] = "json"
    if req.keep_alive is not None:
        body["keep_alive"] = req.keep_alive
    return body


class OllamaProvider:
    """Chat with one Ollama server (or a simulated one, ``api="sim"``) through ``/api/chat``."""

    def __init__(self, endpoint: str, client: httpx.AsyncClient, *, api: str = "ollama") -> None:
        self.api = api
        self.endpoint = endpoint.rstrip("/")
        self._client = client
        self._url = f"{self.endpoint}/api/chat"

    def __repr__(self) -> str:
        return f"OllamaProvider(endpoint={self.endpoint!r}, api={self.api!r})"

    async def chat(self, req: ChatRequest) -> ChatResult:
        """Stream one reply; ``ProviderError`` on an error answer, a timeout or a dropped link."""
        return await guarded_call(
            lambda t0: self._chat(req, t0), req, api=self.api, endpoint=self.endpoint
        )

    async def _chat(self, req: ChatRequest, t0: float) -> ChatResult:
        body = ollama_body(req)
        async with self._client.stream(
            "POST", self._url, json=body, timeout=request_timeout(req)
        ) as resp:
            if resp.status_code != 200:
                raw = await resp.aread()
                raise status_error(
                    api=self.api,
                    endpoint=self.endpoint,
                    model=req.model,
                    status=resp.status_code,
                    raw=raw,
                    headers=resp.headers,
                    path=httpx.URL(self._url).path,
                )
            parts: list[str] = []
            ttft_ms: float | None = None
            final: _Chunk | None = None
            async for line in resp.aiter_lines():
                if not line.strip():
                    continue
                chunk = decode_chunk(
                    _CHUNK,
                    line,
                    api=self.api,
                    endpoint=self.endpoint,
                    model=req.model,
                    status=resp.status_code,
                )
                if chunk.message is not None and chunk.message.content:
                    if ttft_ms is None:
                        ttft_ms = elapsed_ms(t0)
                    parts.append(chunk.message.content)
                if chunk.done:
                    final = chunk
                    break
            if final is None:
                raise ProviderError(
                    f"{self.api} endpoint {self.endpoint} closed the stream for model "
                    f"{req.model} before the final chunk; retrying may help",
                    status=resp.status_code,
                    retryable=True,
                )
        total_ms = (time.perf_counter() - t0) * 1000.0
        return ChatResult(
            text="".join(parts),
            ttft_ms=ttft_ms if ttft_ms is not None else total_ms,
            total_ms=total_ms,
            load_ms=_amount(final.load_duration) / _NS_PER_MS,
            prompt_tokens=int(_amount(final.prompt_eval_count)),
            completion_tokens=int(_amount(final.eval_count)),
            http_status=resp.status_code,
            model_name=final.model or req.model,
            endpoint=self.endpoint,
            finish_reason=final.done_reason,
        )
