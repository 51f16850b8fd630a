"""Retries with exponential back-off and seeded jitter, reporting every attempt."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

import msgspec

from swarmlog.errors import ProviderError
from swarmlog.events import ModelCallFinished
from swarmlog.providers.base import ChatRequest, ChatResult, Provider, ProviderTimeout

__all__ = [
    "REJECTED_STATUSES",
    "AttemptRecord",
    "RetryPolicy",
    "attempt_outcome",
    "backoff_delay",
    "call_with_retries",
]

# Answers that mean "the server refused for now": recorded as outcome "rejected".
REJECTED_STATUSES = frozenset({429, 503, 529})


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How often and how patiently to retry a model call.

    The n-th retry waits ``min(max_s, base_s * 2**(n-1))`` scaled by a jitter factor in
    [0.5, 1.0), or the server's ``Retry-After`` if that is longer; a ``Retry-After`` beyond
    ``max_retry_after_s`` is not waited for (the error is raised instead).
    """

    max_attempts: int = 3
    base_s: float = 0.5
    max_s: float = 30.0
    max_retry_after_s: float = 300.0


class AttemptRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt of a model call, successful or not (one ``model_call_finished`` each).

    ``delay_s`` is the back-off slept before the next attempt (0 when none follows);
    ``outcome`` is ``ok``, ``timeout``, ``rejected`` (429/503/529) or ``error``.
    """

    attempt: int
    model: str
    endpoint: str
    outcome: str
    http_status: int = 0
    ttft_ms: float = 0.0
    total_ms: float = 0.0
    load_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_name: str = ""
    error: str = ""
    retryable: bool = False
    retry_after_s: float = 0.0
    delay_s: float = 0.0
    reply: str = ""

    def to_event(
        self, *, agent: str, task_id: str = "", model: str | None = None, actor: str = ""
    ) -> ModelCallFinished:
        """Build the ``model_call_finished`` event; ``model`` overrides the wire name."""
        return ModelCallFinished(
            model=model if model is not None else self.model,
            endpoint=self.endpoint,
            model_name=self.model_name,
            task_id=task_id,
            agent=agent,
            actor=actor or agent,
            ttft_ms=self.ttft_ms,
            total_ms=self.total_ms,
            load_ms=self.load_ms,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            outcome=self.outcome,
            http_status=self.http_status,
            error=self.error,
            retry_after_s=self.retry_after_s,
            reply=self.reply,
        )


def attempt_outcome(exc: ProviderError) -> str:
    """Classify a failed attempt as ``timeout``, ``rejected`` or ``error``."""
    if isinstance(exc, ProviderTimeout):
        return "timeout"
    if exc.status in REJECTED_STATUSES:
        return "rejected"
    return "error"


def backoff_delay(policy: RetryPolicy, retry: int, rng: random.Random, retry_after: float) -> float:
    """Return the seconds to wait before retry number ``retry`` (1-based)."""
    ceiling = min(policy.max_s, policy.base_s * 2.0 ** (retry - 1))
    jittered = ceiling * (0.5 + 0.5 * rng.random())
    return max(jittered, retry_after)


async def call_with_retries(
    provider: Provider,
    req: ChatRequest,
    *,
    policy: RetryPolicy,
    rng: random.Random,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    on_attempt: Callable[[AttemptRecord], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> ChatResult:
    """Call ``provider.chat(req)``, retrying retryable errors; raise the last error when done.

    Non-retryable errors (an unknown model, a bad request, bad credentials) are raised at once.
    Every attempt is reported to ``on_attempt`` before any back-off sleep.
    """
    attempts = max(1, policy.max_attempts)
    for attempt in range(1, attempts + 1):
        t0 = clock()
        try:
            result = await provider.chat(req)
        except ProviderError as exc:
            total_ms = (clock() - t0) * 1000.0
            is_last = attempt == attempts or not exc.retryable
            too_long = exc.retry_after > policy.max_retry_after_s
            delay = 0.0
            if not is_last and not too_long:
                delay = backoff_delay(policy, attempt, rng, exc.retry_after)
            if on_attempt is not None:
                on_attempt(
                    AttemptRecord(
                        attempt=attempt,
                        model=req.model,
                        endpoint=provider.endpoint,
                        outcome=attempt_outcome(exc),
                        http_status=exc.status,
                        total_ms=total_ms,
                        error=str(exc),
                        retryable=exc.retryable,
                        retry_after_s=exc.retry_after,
                        delay_s=delay,
                    )
                )
            if not exc.retryable:
                raise
            if is_last or too_long:
                why = (
                    f"Retry-After {round(exc.retry_after, 1):g}s exceeds "
                    f"max_retry_after_s={policy.max_retry_after_s:g}s"
                    if too_long
                    else f"gave up after {attempt} attempts"
                )
                raise type(exc)(
                    f"{exc} ({why})",
                    status=exc.status,
                    retryable=exc.retryable,
                    retry_after=exc.retry_after,
                ) from exc
            await sleep(delay)
            continue
        if on_attempt is not None:
            on_attempt(
                AttemptRecord(
                    attempt=attempt,
                    model=req.model,
                    endpoint=provider.endpoint,
                    outcome="ok",
                    http_status=result.http_status,
                    ttft_ms=result.ttft_ms,
                    total_ms=result.total_ms,
                    load_ms=result.load_ms,
                    prompt_tokens=result.prompt_tokens,
                    completion_tokens=result.completion_tokens,
                    model_name=result.model_name,
                    reply=result.text,
                )
            )
        return result
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover
