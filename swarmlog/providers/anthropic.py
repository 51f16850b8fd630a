"""Anthropic's Messages API for the Director; the API key never leaves the request headers."""

from __future__ import annotations

import os
import time
from typing import Any

import httpx
import msgspec

from swarmlog.errors import ProviderError
from swarmlog.providers._http import error_text, guarded_call, request_timeout, status_error
from swarmlog.providers.base import ChatRequest, ChatResult

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_ANTHROPIC_ENDPOINT",
    "AnthropicProvider",
    "anthropic_api_key",
    "anthropic_body",
]

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_ANTHROPIC_ENDPOINT = "https://api.anthropic.com"
_ENV_KEY = "ANTHROPIC_API_KEY"


class _Block(msgspec.Struct):
    type: str = ""
    text: str = ""


class _Usage(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0


class _Reply(msgspec.Struct):
    content: list[_Block]  # required: a 200 without it is not a Messages reply
    model: str = ""
    stop_reason: str | None = None
    usage: _Usage | None = None


_REPLY = msgspec.json.Decoder(_Reply)


class _Secret:
    """Hold a credential so that ``repr``/``str`` never show it."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


def anthropic_api_key(explicit: str | None = None) -> str:
    """Return the API key: an explicit argument wins, then ``ANTHROPIC_API_KEY``.

    This is the one place swarmlog reads that variable.
    """
    key = explicit if explicit else os.environ.get(_ENV_KEY, "")
    if not key:
        raise ProviderError(
            f"no Anthropic API key: {_ENV_KEY} is not set; export it (or pass api_key) "
            f"before starting a run that uses an anthropic model"
        )
    return key


def anthropic_body(req: ChatRequest) -> dict[str, Any]:
    """Build the ``/v1/messages`` JSON body; system messages become the ``system`` field."""
    system = "\n\n".join(m.content for m in req.messages if m.role == "system")
    body: dict[str, Any] = {
        "model": req.model,
        "max_tokens": req.max_tokens,
        "temperature": req.temperature,
        "messages": [
            {"role": m.role, "content": m.content} for m in req.messages if m.role != "system"
        ],
    }
    if system:
        body["system"] = system
    # The Messages API has no JSON mode; the prompt asks for JSON and the caller validates.
    return body


class AnthropicProvider:
    """Chat with Anthropic's Messages API (non-streaming); 429 and 529 are retryable."""

    api = "anthropic"

    def __init__(
        self,
        endpoint: str,
        client: httpx.AsyncClient,
        *,
        api_key: str | None = None,
        version: str = ANTHROPIC_VERSION,
    ) -> None:
        self.endpoint = (endpoint or DEFAULT_ANTHROPIC_ENDPOINT).rstrip("/")
        self._client = client
        base = self.endpoint[:-3] if self.endpoint.endswith("/v1") else self.endpoint
        self._url = f"{base}/v1/messages"  # the endpoint may be written with or without /v1
        self._key = _Secret(anthropic_api_key(api_key))
        self._version = version

    def __repr__(self) -> str:
        return f"AnthropicProvider(endpoint={self.endpoint!r}, api_key=<secret>)"

    def _scrub(self, text: str) -> str:
        return text.replace(self._key.value, "***")

    async def chat(self, req: ChatRequest) -> ChatResult:
        """Send one request and return the reply; the key never appears in an error."""
        return await guarded_call(
            lambda t0: self._chat(req, t0),
            req,
            api=self.api,
            endpoint=self.endpoint,
            scrub=self._scrub,
        )

    async def _chat(self, req: ChatRequest, t0: float) -> ChatResult:
        headers = {
            "x-api-key": self._key.value,
            "anthropic-version": self._version,
            "content-type": "application/json",
        }
        resp = await self._client.post(
            self._url, json=anthropic_body(req), headers=headers, timeout=request_timeout(req)
        )
        if resp.status_code != 200:
            raise status_error(
                api=self.api,
                endpoint=self.endpoint,
                model=req.model,
                status=resp.status_code,
                raw=resp.content,
                headers=resp.headers,
                path=httpx.URL(self._url).path,
                scrub=self._scrub,
            )
        try:
            reply = _REPLY.decode(resp.content)
        except msgspec.DecodeError as exc:
            said = self._scrub(error_text(resp.content))
            raise ProviderError(
                f"{self.api} endpoint {self.endpoint} answered HTTP 200 for model {req.model} "
                f"without a Messages reply ({exc}; it said: {said}); check that the endpoint "
                f"serves Anthropic's Messages API, retrying may help",
                status=resp.status_code,
                retryable=True,
            ) from exc
        total_ms = (time.perf_counter() - t0) * 1000.0
        usage = reply.usage or _Usage()
        return ChatResult(
            text="".join(b.text for b in reply.content if b.type == "text"),
            ttft_ms=total_ms,
            total_ms=total_ms,
            prompt_tokens=usage.input_tokens,
            completion_tokens=usage.output_tokens,
            http_status=resp.status_code,
            model_name=reply.model or req.model,
            endpoint=self.endpoint,
            finish_reason=reply.stop_reason or "",
        )
