"""OpenAI-compatible ``/v1/chat/completions`` (vLLM, llama.cpp, LM Studio, Ollama's /v1), SSE."""

from __future__ import annotations

import re
import time
import weakref
from collections.abc import Collection
from typing import Any

import httpx
import msgspec

from swarmlog.errors import ProviderError
from swarmlog.providers._http import (
    decode_chunk,
    elapsed_ms,
    error_text,
    guarded_call,
    request_timeout,
    status_error,
)
from swarmlog.providers.base import ChatRequest, ChatResult

__all__ = ["OPTIONAL_FIELDS", "OpenAIProvider", "openai_body"]


class _Delta(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None
    finish_reason: str | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _Chunk(msgspec.Struct):
    model: str = ""
    choices: list[_Choice] = []
    usage: _Usage | None = None
    # {"message", "type", ...} or a plain string; msgspec.Raw | None matched only null, so an
    # error chunk was reported as a malformed response
    error: Any = None


_CHUNK = msgspec.json.Decoder(_Chunk)


class _Message(msgspec.Struct):
    content: str | None = None


class _WholeChoice(msgspec.Struct):
    message: _Message | None = None
    finish_reason: str | None = None


class _Completion(msgspec.Struct):
    """A non-streamed completion: what a server that ignores ``stream: true`` sends."""

    choices: list[_WholeChoice]
    model: str = ""
    usage: _Usage | None = None


_COMPLETION = msgspec.json.Decoder(_Completion)
# The field names of a server-sent event line; any other non-blank line is not SSE.
_SSE_FIELD = re.compile(r"^(?:data|event|id|retry)(?::|$)|^:")


# Request fields a server may refuse (HTTP 400/422 naming them) that a call can do without:
# response_format (LM Studio takes only json_schema or text; the reply is validated anyway) and
# stream_options (Mistral's API, older vLLM: only the token counts are lost).
OPTIONAL_FIELDS = ("response_format", "stream_options")

# Per shared client, per chat URL, the optional fields its server refused: later calls leave
# them out.
_REFUSED: weakref.WeakKeyDictionary[httpx.AsyncClient, dict[str, set[str]]] = (
    weakref.WeakKeyDictionary()
)


class _FieldRefused(Exception):
    """The server answered 400/422 to a request because of one optional field."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def openai_body(
    req: ChatRequest, *, stream: bool = True, omit: Collection[str] = ()
) -> dict[str, Any]:
    """Build the ``/v1/chat/completions`` JSON body for a request, without the ``omit`` fields
    (a server refused them)."""
    body: dict[str, Any] = {
        "model": req.model,
        "messages": [{"role": m.role, "content": m.content} for m in req.messages],
        "stream": stream,
        "max_tokens": req.max_tokens,
        "temperature": req.temperature,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    if req.seed is not None:
        body["seed"] = req.seed
    if req.json_mode:
        body["response_format"] = {"type": "json_object"}
    for name in omit:
        body.pop(name, None)
    return body


class OpenAIProvider:
    """Chat with an OpenAI-compatible server; ``endpoint`` may or may not end in ``/v1``."""

    api = "openai"

    def __init__(
        self, endpoint: str, client: httpx.AsyncClient, *, api_key: str | None = None
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._client = client
        base = self.endpoint if self.endpoint.endswith("/v1") else f"{self.endpoint}/v1"
        self._url = f"{base}/chat/completions"
        self._headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._secret = api_key or ""

    def __repr__(self) -> str:
        return f"OpenAIProvider(endpoint={self.endpoint!r})"

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    async def chat(self, req: ChatRequest) -> ChatResult:
        """Stream one reply over SSE; ``ProviderError`` on any failure."""
        return await guarded_call(
            lambda t0: self._chat(req, t0),
            req,
            api=self.api,
            endpoint=self.endpoint,
            scrub=self._scrub,
        )

    async def _chat(self, req: ChatRequest, t0: float) -> ChatResult:
        refused = _REFUSED.setdefault(self._client, {}).setdefault(self._url, set())
        while True:
            try:
                return await self._send(req, t0, omit=frozenset(refused))
            except _FieldRefused as exc:
                refused.add(exc.field)  # ask again without it, and remember for later calls

    async def _send(self, req: ChatRequest, t0: float, *, omit: frozenset[str]) -> ChatResult:
        body = openai_body(req, omit=omit)
        async with self._client.stream(
            "POST",
            self._url,
            json=body,
            headers=self._headers,
            timeout=request_timeout(req),
        ) as resp:
            if resp.status_code != 200:
                raw = await resp.aread()
                if resp.status_code in (400, 422):
                    said = raw.decode("utf-8", "replace")
                    for name in OPTIONAL_FIELDS:
                        if name in body and name in said:
                            raise _FieldRefused(name)
                raise status_error(
                    api=self.api,
                    endpoint=self.endpoint,
                    model=req.model,
                    status=resp.status_code,
                    raw=raw,
                    headers=resp.headers,
                    path=httpx.URL(self._url).path,
                    scrub=self._scrub,
                    sent_key=bool(self._secret),
                )
            parts: list[str] = []
            ttft_ms: float | None = None
            usage: _Usage | None = None
            model_name = ""
            finish = ""
            is_done = False
            other: list[str] = []  # lines that are not SSE: a whole JSON body, an HTML page
            saw_data = False
            async for line in resp.aiter_lines():
                if not line.startswith("data:"):
                    if line.strip() and not _SSE_FIELD.match(line):
                        other.append(line)
                    continue  # blank separators, comments (": ping"), event: lines
                data = line[5:].strip()
                saw_data = True
                if data == "[DONE]":
                    is_done = True
                    break
                chunk = decode_chunk(
                    _CHUNK,
                    data,
                    api=self.api,
                    endpoint=self.endpoint,
                    model=req.model,
                    status=resp.status_code,
                    scrub=self._scrub,
                )
                model_name = chunk.model or model_name
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices:
                    if choice.delta is not None and choice.delta.content:
                        if ttft_ms is None:
                            ttft_ms = elapsed_ms(t0)
                        parts.append(choice.delta.content)
                    if choice.finish_reason:
                        finish = choice.finish_reason
            if not saw_data and other:
                return self._whole(req, t0, "\n".join(other), resp.status_code)
            if not is_done:
                raise ProviderError(
                    f"openai endpoint {self.endpoint} closed the stream for model {req.model} "
                    f"before 'data: [DONE]'; retrying may help",
                    status=resp.status_code,
                    retryable=True,
                )
        total_ms = (time.perf_counter() - t0) * 1000.0
        return ChatResult(
            text="".join(parts),
            ttft_ms=ttft_ms if ttft_ms is not None else total_ms,
            total_ms=total_ms,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            http_status=resp.status_code,
            model_name=model_name or req.model,
            endpoint=self.endpoint,
            finish_reason=finish,
        )

    def _whole(self, req: ChatRequest, t0: float, body: str, status: int) -> ChatResult:
        """Read a 200 that carried no server-sent events as one non-streamed completion."""
        try:
            whole = _COMPLETION.decode(body)
        except msgspec.DecodeError as exc:
            said = self._scrub(error_text(body.encode()))
            raise ProviderError(
                f"openai endpoint {self.endpoint} answered HTTP 200 for model {req.model} with "
                f"neither server-sent events nor a chat completion ({exc}; it said: {said}); "
                f"check that the endpoint is an OpenAI-compatible server, retrying may help",
                status=status,
                retryable=True,
            ) from exc
        total_ms = elapsed_ms(t0)
        first = whole.choices[0] if whole.choices else _WholeChoice()
        usage = whole.usage or _Usage()
        return ChatResult(
            text=(first.message.content if first.message else None) or "",
            ttft_ms=total_ms,
            total_ms=total_ms,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            http_status=status,
            model_name=whole.model or req.model,
            endpoint=self.endpoint,
            finish_reason=first.finish_reason or "",
        )
