"""Call a task's routed model through its provider, recording every attempt as an event."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import random
import ssl
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from swarmlog.errors import ConfigError, ProviderError, SwarmlogError
from swarmlog.events import EventBase
from swarmlog.providers.base import ChatRequest, ChatResult, Message, Provider
from swarmlog.providers.factory import make_provider
from swarmlog.providers.retry import AttemptRecord, RetryPolicy, call_with_retries
from swarmlog.runtime.agent import CallOutcome, cut_short_error, record_cut_call
from swarmlog.runtime.board import TaskView

__all__ = ["ModelCalls", "call_cost", "endpoint_client", "is_local", "tls_verify"]


class ModelCalls:
    """The ``ModelCaller`` of an agent process: one shared httpx client per endpoint."""

    def __init__(self, agent: str, *, seed: int, policy: RetryPolicy | None = None) -> None:
        self.agent = agent
        self.rng = random.Random(seed)
        self.policy = policy or RetryPolicy()
        self._clients: dict[str, httpx.AsyncClient] = {}

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    def _client(self, endpoint: str) -> httpx.AsyncClient:
        """The shared client for an endpoint.

        Built by ``endpoint_client``, as ``swarmlog doctor``, ``init`` and the monitor build
        theirs: a model server on this machine or the local network is reached directly (an
        ``HTTP_PROXY`` meant for the internet must not turn a healthy local Ollama into 'cannot
        connect'); any other host (Anthropic's API, a hosted OpenAI-compatible one) keeps the
        environment's proxy; ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` (a private CA) apply to every
        client.
        """
        if endpoint not in self._clients:
            self._clients[endpoint] = endpoint_client(endpoint)
        return self._clients[endpoint]

    async def __call__(
        self, name: str, profile: dict[str, Any], task: TaskView, prompt: str
    ) -> CallOutcome:
        if not profile:
            return CallOutcome(
                text="", error=f"model profile {name!r} is not in the config in force"
            )
        endpoint = str(profile["endpoint"])
        try:
            provider = make_provider(
                str(profile.get("api", "ollama")), endpoint, self._client(endpoint)
            )
        except SwarmlogError as exc:  # e.g. the Director's API key is not set
            return CallOutcome(text="", error=str(exc))
        request = ChatRequest(
            model=str(profile["model"]),
            messages=(Message("user", prompt),),
            json_mode=True,
            num_ctx=profile.get("context_length"),
            keep_alive=profile.get("keep_alive"),
            timeout_s=float(profile.get("timeout_s") or 120.0),
            max_tokens=reply_token_limit(profile),
        )
        rate = profile.get("cost_per_1k_tokens")
        records: list[AttemptRecord] = []
        watched = _Watched(provider)
        try:
            result = await call_with_retries(
                watched, request, policy=self.policy, rng=self.rng, on_attempt=records.append
            )
        except asyncio.CancelledError:
            # Cut short (the agent's time limit for the task): the attempts made stay on record,
            # the one in flight as a time-out after the time it had.
            if watched.cut_ms is not None:
                records.append(
                    AttemptRecord(
                        attempt=len(records) + 1,
                        model=request.model,
                        endpoint=provider.endpoint,
                        outcome="timeout",
                        total_ms=watched.cut_ms,
                        error=cut_short_error(watched.cut_ms),
                        retryable=True,
                    )
                )
            record_cut_call(self._events(records, name, task, rate))
            raise
        except ProviderError as exc:
            return CallOutcome(
                text="", events=self._events(records, name, task, rate), error=str(exc)
            )
        return CallOutcome(text=result.text, events=self._events(records, name, task, rate))

    def _events(
        self, records: list[AttemptRecord], name: str, task: TaskView, rate: Any
    ) -> list[EventBase]:
        return [
            msgspec.structs.replace(
                r.to_event(agent=self.agent, task_id=task.task_id, model=name),
                cost=call_cost(rate, r.prompt_tokens, r.completion_tokens),
            )
            for r in records
        ]


class _Watched:
    """A provider that knows how long its attempt was in flight when it was cancelled."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.api = provider.api
        self.endpoint = provider.endpoint
        self.cut_ms: float | None = None  # set when an attempt is cancelled

    async def chat(self, req: ChatRequest) -> ChatResult:
        started = time.perf_counter()
        try:
            return await self.provider.chat(req)
        except asyncio.CancelledError:
            self.cut_ms = (time.perf_counter() - started) * 1000.0
            raise


def endpoint_client(endpoint: str, *, timeout_s: float = 5.0) -> httpx.AsyncClient:
    """A new client that reaches ``endpoint``'s model server as the night's calls do: directly
    if it is local (``is_local``), else through the environment's proxy; TLS trust from
    ``tls_verify`` (a ``ConfigError`` on one line when ``SSL_CERT_FILE`` cannot be read).
    ``timeout_s`` is httpx's default, which a provider's request overrides."""
    trust_env = not is_local(endpoint)
    return httpx.AsyncClient(timeout=timeout_s, trust_env=trust_env, verify=tls_verify())


_LOCAL_SUFFIXES = (".localhost", ".local", ".lan", ".internal", ".home.arpa")


def is_local(endpoint: str) -> bool:
    """Tell whether an endpoint's host is this machine or the local network (no proxy there):
    localhost, a loopback, private, link-local or shared (100.64/10) address, a single-label
    name or a local-only domain (.local, .lan, .internal, .home.arpa)."""
    try:
        host = (urlsplit(endpoint).hostname or "").lower().rstrip(".")
    except ValueError:  # a malformed IPv6 literal; the config refuses it before a run
        return False
    if not host or host == "localhost" or host.endswith(_LOCAL_SUFFIXES):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return "." not in host  # 'gpu-box': a name only the local resolver knows
    return ip.is_loopback or ip.is_private or ip.is_link_local or ip in _SHARED


_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, Tailscale's addresses


def tls_verify() -> ssl.SSLContext | bool:
    """The TLS trust httpx takes from ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when it reads the
    environment, for a client that does not (``trust_env=False``); else its default."""
    cafile = os.environ.get("SSL_CERT_FILE") or None
    capath = os.environ.get("SSL_CERT_DIR") or None
    if cafile is None and capath is None:
        return True
    try:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    except (OSError, ssl.SSLError) as exc:
        named = f"SSL_CERT_FILE={cafile}" if cafile else f"SSL_CERT_DIR={capath}"
        raise ConfigError(
            f"cannot load the CA certificates of {named} ({exc.strerror or exc}); "
            f"point it at a PEM file of the model server's CA, or unset it"
        ) from exc


def call_cost(per_1k: Any, prompt_tokens: int, completion_tokens: int) -> float:
    """Cost of one call from ``cost_per_1k_tokens`` (a number, or {input, output})."""
    if isinstance(per_1k, dict):
        rate_in, rate_out = float(per_1k.get("input", 0.0)), float(per_1k.get("output", 0.0))
    else:
        rate_in = rate_out = float(per_1k or 0.0)
    return round((prompt_tokens * rate_in + completion_tokens * rate_out) / 1000.0, 6)


def reply_token_limit(profile: Mapping[str, Any]) -> int:
    """Tokens a reply may use: ``max_tokens``, else half the context (1024 to 8192).

    A fixed 1024 cut a team plan of more than ~16 items short, and the cut reply could not be
    parsed; half the context leaves the other half for the prompt.
    """
    if profile.get("max_tokens"):
        return int(profile["max_tokens"])
    return min(8192, max(1024, int(profile.get("context_length") or 8192) // 2))
