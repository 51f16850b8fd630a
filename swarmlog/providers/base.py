"""The types every model provider shares: a request, its result, the ``Provider`` protocol."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import msgspec

from swarmlog.errors import ProviderError

__all__ = ["ChatRequest", "ChatResult", "Message", "Provider", "ProviderTimeout"]


class Message(msgspec.Struct, frozen=True):
    """One chat message: ``role`` is ``system``, ``user`` or ``assistant``."""

    role: str
    content: str


class ChatRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One call to a chat model, independent of the server's API.

    ``num_ctx`` should be fixed per model profile so Ollama never reloads between calls;
    ``timeout_s`` bounds the whole call (connect, queueing, load, generation).
    """

    model: str
    messages: tuple[Message, ...]
    max_tokens: int = 1024
    temperature: float = 0.0
    json_mode: bool = False
    num_ctx: int | None = None
    keep_alive: str | None = None
    seed: int | None = None
    timeout_s: float = 120.0


class ChatResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a successful call returned, with the client-side timings in milliseconds.

    ``ttft_ms`` and ``total_ms`` are measured by the client clock from the moment the request
    was sent (so they include queueing and load); ``load_ms`` is what the server reported.
    ``model_name`` is the name the server answered with; ``finish_reason`` is ``stop``,
    ``length`` or whatever the server said.
    """

    text: str
    ttft_ms: float = 0.0
    total_ms: float = 0.0
    load_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    http_status: int = 200
    model_name: str = ""
    endpoint: str = ""
    finish_reason: str = ""


@runtime_checkable
class Provider(Protocol):
    """A client for one model endpoint; ``chat`` raises ``ProviderError`` on any failure."""

    api: str
    endpoint: str

    async def chat(self, req: ChatRequest) -> ChatResult:
        """Send one chat request and return the whole reply."""
        ...


class ProviderTimeout(ProviderError):
    """Raised when a model call exceeds its ``timeout_s`` (always retryable)."""
