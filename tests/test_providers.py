"""Providers against real loopback servers speaking each protocol; retries and back-off."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
import pytest

from swarmlog.errors import ConfigError, ProviderError
from swarmlog.events import ModelCallFinished
from swarmlog.providers import (
    AnthropicProvider,
    AttemptRecord,
    ChatRequest,
    ChatResult,
    Message,
    OllamaProvider,
    OpenAIProvider,
    ProviderTimeout,
    RetryPolicy,
    anthropic_api_key,
    backoff_delay,
    call_with_retries,
    make_provider,
)
from swarmlog.providers._http import parse_retry_after
from swarmlog.sim.http import Request, Response, serve

pytestmark = pytest.mark.anyio

KEY = "sk-ant-test-SECRET-0123456789"


@asynccontextmanager
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


def request(**kw: object) -> ChatRequest:
    base: dict[str, object] = {
        "model": "qwen3:32b",
        "messages": (Message("system", "be brief"), Message("user", "hi")),
        "timeout_s": 5.0,
    }
    base.update(kw)
    return ChatRequest(**base)  # type: ignore[arg-type]


def ndjson(*objs: object) -> list[bytes]:
    return [json.dumps(o).encode() + b"\n" for o in objs]


OLLAMA_DONE = {
    "model": "qwen3:32b",
    "message": {"role": "assistant", "content": ""},
    "done": True,
    "done_reason": "stop",
    "total_duration": 2_500_000_000,
    "load_duration": 1_250_000_000,
    "prompt_eval_count": 12,
    "prompt_eval_duration": 100_000_000,
    "eval_count": 7,
    "eval_duration": 900_000_000,
}


def ollama_piece(text: str) -> dict[str, object]:
    return {"model": "qwen3:32b", "message": {"role": "assistant", "content": text}, "done": False}


# Ollama


async def test_ollama_streams_and_maps_timings() -> None:
    seen: list[dict[str, object]] = []

    async def handler(req: Request, resp: Response) -> None:
        seen.append(req.json())
        await resp.start(200)
        for line in ndjson(ollama_piece('{"ok"'), ollama_piece(": true}"), OLLAMA_DONE):
            await resp.write(line)
            await asyncio.sleep(0.01)
        await resp.end()

    async with serve(handler) as url, client() as c:
        provider = OllamaProvider(url, c)
        result = await provider.chat(
            request(json_mode=True, num_ctx=8192, seed=7, keep_alive="60m", max_tokens=64)
        )
    assert result.text == '{"ok": true}'
    assert result.load_ms == pytest.approx(1250.0)
    assert (result.prompt_tokens, result.completion_tokens) == (12, 7)
    assert result.finish_reason == "stop" and result.http_status == 200
    assert result.model_name == "qwen3:32b" and result.endpoint == url
    assert 0 < result.ttft_ms < result.total_ms
    body = seen[0]
    assert body["stream"] is True and body["format"] == "json" and body["keep_alive"] == "60m"
    assert body["options"] == {"num_ctx": 8192, "num_predict": 64, "temperature": 0.0, "seed": 7}
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]


async def test_ollama_unknown_model_fails_fast_naming_model_and_endpoint() -> None:
    calls = 0

    async def handler(req: Request, resp: Response) -> None:
        nonlocal calls
        calls += 1
        await resp.send_json(404, {"error": 'model "nope:1b" not found, try pulling it first'})

    records: list[AttemptRecord] = []
    async with serve(handler) as url, client() as c:
        with pytest.raises(ProviderError) as info:
            await call_with_retries(
                OllamaProvider(url, c),
                request(model="nope:1b"),
                policy=RetryPolicy(max_attempts=5, base_s=0.0),
                rng=random.Random(1),
                on_attempt=records.append,
            )
    message = str(info.value)
    assert "nope:1b" in message and url in message and "ollama pull nope:1b" in message
    assert info.value.status == 404 and not info.value.retryable
    assert calls == 1 and [r.outcome for r in records] == ["error"]


async def test_ollama_503_with_retry_after_is_retried_after_waiting() -> None:
    calls = 0

    async def handler(req: Request, resp: Response) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await resp.send_json(
                503,
                {"error": "server busy, please try again.  maximum pending requests exceeded"},
                headers={"Retry-After": "2"},
            )
            return
        await resp.start(200)
        for line in ndjson(ollama_piece("fine"), OLLAMA_DONE):
            await resp.write(line)
        await resp.end()

    slept: list[float] = []

    async def fake_sleep(s: float) -> None:
        slept.append(s)

    records: list[AttemptRecord] = []
    async with serve(handler) as url, client() as c:
        result = await call_with_retries(
            OllamaProvider(url, c),
            request(),
            policy=RetryPolicy(max_attempts=3, base_s=0.01, max_s=0.05),
            rng=random.Random(3),
            sleep=fake_sleep,
            on_attempt=records.append,
        )
    assert result.text == "fine"
    assert slept == [2.0]  # Retry-After beats the (smaller) jittered back-off
    assert [r.outcome for r in records] == ["rejected", "ok"]
    assert records[0].http_status == 503 and records[0].retry_after_s == 2.0
    assert records[0].delay_s == 2.0 and "server busy" in records[0].error
    assert records[1].load_ms == pytest.approx(1250.0) and records[1].reply == "fine"


async def test_ollama_connection_dropped_mid_stream_is_retried() -> None:
    calls = 0

    async def handler(req: Request, resp: Response) -> None:
        nonlocal calls
        calls += 1
        await resp.start(200)
        await resp.write(ndjson(ollama_piece("partial"))[0])
        if calls == 1:
            resp.abort()
            return
        await resp.write(ndjson(OLLAMA_DONE)[0])
        await resp.end()

    records: list[AttemptRecord] = []
    async with serve(handler) as url, client() as c:
        result = await call_with_retries(
            OllamaProvider(url, c),
            request(),
            policy=RetryPolicy(max_attempts=3, base_s=0.001, max_s=0.01),
            rng=random.Random(0),
            on_attempt=records.append,
        )
    assert result.text == "partial" and calls == 2
    assert records[0].outcome == "error" and records[0].retryable
    assert "retrying may help" in records[0].error


async def test_ollama_stream_ending_without_done_is_a_retryable_error() -> None:
    async def handler(req: Request, resp: Response) -> None:
        await resp.start(200)
        await resp.write(ndjson(ollama_piece("half"))[0])
        await resp.end()

    async with serve(handler) as url, client() as c:
        with pytest.raises(ProviderError, match="before the final chunk") as info:
            await OllamaProvider(url, c).chat(request())
    assert info.value.retryable


async def test_server_that_accepts_and_never_answers_times_out() -> None:
    async def handler(req: Request, resp: Response) -> None:
        await asyncio.Event().wait()

    async with serve(handler) as url, client() as c:
        t0 = time.perf_counter()
        with pytest.raises(ProviderTimeout) as info:
            await OllamaProvider(url, c).chat(request(timeout_s=0.2))
        elapsed = time.perf_counter() - t0
    assert info.value.retryable and "timeout_s=0.2" in str(info.value)
    assert elapsed < 2.0


async def test_a_slow_drip_stream_hits_the_overall_deadline() -> None:
    async def handler(req: Request, resp: Response) -> None:
        await resp.start(200)
        while True:  # each chunk arrives well within the read timeout, but it never ends
            await resp.write(ndjson(ollama_piece("."))[0])
            await asyncio.sleep(0.02)

    async with serve(handler) as url, client() as c:
        t0 = time.perf_counter()
        with pytest.raises(ProviderTimeout):
            await OllamaProvider(url, c).chat(request(timeout_s=0.25))
    assert time.perf_counter() - t0 < 2.0


async def test_connection_refused_is_retryable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with client() as c:
        with pytest.raises(ProviderError, match="cannot connect") as info:
            await OllamaProvider(f"http://127.0.0.1:{port}", c).chat(request())
    assert info.value.retryable and f"127.0.0.1:{port}" in str(info.value)


async def test_sim_api_speaks_ollama() -> None:
    async with client() as c:
        provider = make_provider("sim", "http://127.0.0.1:1/", c)
    assert isinstance(provider, OllamaProvider) and provider.api == "sim"
    assert provider.endpoint == "http://127.0.0.1:1"


# OpenAI-compatible


def sse(obj: object) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def oa_chunk(content: str | None, finish: str | None = None) -> dict[str, object]:
    delta = {} if content is None else {"content": content}
    return {
        "model": "served-32b",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


async def test_openai_streams_sse_with_usage() -> None:
    seen: list[Request] = []

    async def handler(req: Request, resp: Response) -> None:
        seen.append(req)
        await resp.start(200, content_type="text/event-stream")
        await resp.write(b": keep-alive comment\n\n")
        await resp.write(
            sse({"model": "served-32b", "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
        )
        for piece in ("Hel", "lo"):
            await resp.write(sse(oa_chunk(piece)))
            await asyncio.sleep(0.01)
        await resp.write(sse(oa_chunk(None, "stop")))
        await resp.write(
            sse(
                {
                    "model": "served-32b",
                    "choices": [],
                    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
                }
            )
        )
        await resp.write(b"data: [DONE]\n\n")
        await resp.end()

    async with serve(handler) as url, client() as c:
        result = await OpenAIProvider(url + "/v1", c, api_key="vllm-key").chat(
            request(json_mode=True, max_tokens=32)
        )
    assert result.text == "Hello" and result.finish_reason == "stop"
    assert (result.prompt_tokens, result.completion_tokens) == (9, 2)
    assert result.model_name == "served-32b" and 0 < result.ttft_ms < result.total_ms
    assert seen[0].path == "/v1/chat/completions"
    assert seen[0].headers["authorization"] == "Bearer vllm-key"
    body = seen[0].json()
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["response_format"] == {"type": "json_object"} and body["max_tokens"] == 32


async def test_openai_429_with_retry_after_is_retried() -> None:
    calls = 0

    async def handler(req: Request, resp: Response) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            error = {"message": "rate limited", "type": "rate_limit", "param": None, "code": 429}
            await resp.send_json(429, {"error": error}, headers={"Retry-After": "0.05"})
            return
        await resp.start(200, content_type="text/event-stream")
        await resp.write(sse(oa_chunk("ok", "stop")))
        await resp.write(b"data: [DONE]\n\n")
        await resp.end()

    records: list[AttemptRecord] = []
    async with serve(handler) as url, client() as c:
        t0 = time.perf_counter()
        result = await call_with_retries(
            make_provider("openai", url, c),
            request(),
            policy=RetryPolicy(max_attempts=2, base_s=0.001, max_s=0.002),
            rng=random.Random(0),
            on_attempt=records.append,
        )
        waited = time.perf_counter() - t0
    assert result.text == "ok" and waited >= 0.05
    assert records[0].outcome == "rejected" and "rate limited" in records[0].error
    assert records[0].retry_after_s == pytest.approx(0.05)


async def test_openai_404_and_truncated_stream() -> None:
    async def handler(req: Request, resp: Response) -> None:
        if req.json()["model"] == "missing":
            error = {"message": "The model `missing` does not exist.", "type": "NotFoundError"}
            await resp.send_json(404, {"error": error})
            return
        await resp.start(200, content_type="text/event-stream")
        await resp.write(sse(oa_chunk("cut")))
        await resp.end()

    async with serve(handler) as url, client() as c:
        provider = OpenAIProvider(url, c)
        with pytest.raises(ProviderError) as missing:
            await provider.chat(request(model="missing"))
        with pytest.raises(ProviderError, match=r"before 'data: \[DONE\]'") as cut:
            await provider.chat(request())
    assert missing.value.status == 404 and not missing.value.retryable
    assert '"missing"' in str(missing.value) and url in str(missing.value)
    assert cut.value.retryable


# Anthropic


def anthropic_reply(text: str) -> dict[str, object]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 21, "output_tokens": 4},
    }


async def test_anthropic_sends_key_version_and_system() -> None:
    seen: list[Request] = []

    async def handler(req: Request, resp: Response) -> None:
        seen.append(req)
        await resp.send_json(200, anthropic_reply("plan ready"))

    async with serve(handler) as url, client() as c:
        result = await make_provider("anthropic", url, c, api_key=KEY).chat(
            request(model="claude-sonnet-4-5")
        )
    assert result.text == "plan ready" and result.finish_reason == "end_turn"
    assert (result.prompt_tokens, result.completion_tokens) == (21, 4)
    assert seen[0].path == "/v1/messages"
    assert seen[0].headers["x-api-key"] == KEY
    assert seen[0].headers["anthropic-version"] == "2023-06-01"
    body = seen[0].json()
    assert body["system"] == "be brief" and body["messages"] == [{"role": "user", "content": "hi"}]


async def test_anthropic_529_and_429_are_retried_honouring_retry_after() -> None:
    answers = [(529, "1"), (429, "0.5")]

    async def handler(req: Request, resp: Response) -> None:
        if answers:
            status, after = answers.pop(0)
            error = {
                "type": "error",
                "error": {"type": "overloaded_error", "message": "Overloaded"},
            }
            await resp.send_json(status, error, headers={"retry-after": after})
            return
        await resp.send_json(200, anthropic_reply("done"))

    slept: list[float] = []

    async def fake_sleep(s: float) -> None:
        slept.append(s)

    records: list[AttemptRecord] = []
    async with serve(handler) as url, client() as c:
        result = await call_with_retries(
            AnthropicProvider(url, c, api_key=KEY),
            request(),
            policy=RetryPolicy(max_attempts=3, base_s=0.01, max_s=0.1),
            rng=random.Random(5),
            sleep=fake_sleep,
            on_attempt=records.append,
        )
    assert result.text == "done" and slept == [1.0, 0.5]
    assert [(r.outcome, r.http_status) for r in records] == [
        ("rejected", 529),
        ("rejected", 429),
        ("ok", 200),
    ]


async def test_anthropic_key_never_leaks(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)

    async def handler(req: Request, resp: Response) -> None:
        # A hostile or broken proxy that echoes the credential back in its error.
        echoed = f"invalid x-api-key: {req.headers.get('x-api-key')}"
        status = 401 if req.json()["model"] == "a" else 529
        await resp.send_json(status, {"type": "error", "error": {"type": "x", "message": echoed}})

    caplog.set_level(logging.DEBUG)
    records: list[AttemptRecord] = []
    async with serve(handler) as url, client() as c:
        provider = make_provider("anthropic", url, c)  # key from the environment
        texts = [repr(provider), str(provider)]
        for model in ("a", "b"):
            with pytest.raises(ProviderError) as info:
                await call_with_retries(
                    provider,
                    request(model=model),
                    policy=RetryPolicy(max_attempts=2, base_s=0.0),
                    rng=random.Random(0),
                    on_attempt=records.append,
                )
            texts += [str(info.value), repr(info.value), str(info.value.__cause__)]
    assert records and any("***" in r.error for r in records)
    texts += [repr(r) for r in records]
    texts += [r.getMessage() for r in caplog.records]
    assert all(KEY not in t for t in texts)


def test_anthropic_key_explicit_argument_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "from-env")
    assert anthropic_api_key("explicit") == "explicit"
    assert anthropic_api_key() == "from-env"
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(ProviderError, match="ANTHROPIC_API_KEY is not set"):
        anthropic_api_key()


# Retries, back-off, factory


class FlakyProvider:
    """Fail with the given errors in turn, then succeed."""

    api = "fake"
    endpoint = "http://fake"

    def __init__(self, errors: list[ProviderError]) -> None:
        self.errors = errors
        self.calls = 0

    async def chat(self, req: ChatRequest) -> ChatResult:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return ChatResult(text="ok", total_ms=1.0, endpoint=self.endpoint, model_name=req.model)


def test_backoff_is_exponential_capped_and_seeded() -> None:
    policy = RetryPolicy(base_s=1.0, max_s=5.0)
    a = [backoff_delay(policy, n, random.Random(42), 0.0) for n in range(1, 6)]
    b = [backoff_delay(policy, n, random.Random(42), 0.0) for n in range(1, 6)]
    assert a == b
    for n, d in enumerate(a, start=1):
        ceiling = min(5.0, 2.0 ** (n - 1))
        assert ceiling / 2 <= d <= ceiling
    assert backoff_delay(policy, 1, random.Random(1), 3.5) == 3.5


async def test_retries_give_up_after_max_attempts_with_the_last_error() -> None:
    errors = [ProviderError(f"boom {i}", status=500, retryable=True) for i in range(5)]
    provider = FlakyProvider(errors)
    slept: list[float] = []

    async def fake_sleep(s: float) -> None:
        slept.append(s)

    records: list[AttemptRecord] = []
    with pytest.raises(ProviderError, match=r"boom 2 \(gave up after 3 attempts\)") as info:
        await call_with_retries(
            provider,
            request(),
            policy=RetryPolicy(max_attempts=3, base_s=0.1, max_s=1.0),
            rng=random.Random(9),
            sleep=fake_sleep,
            on_attempt=records.append,
        )
    assert provider.calls == 3 and len(slept) == 2 and info.value.status == 500
    assert [r.delay_s for r in records] == [*slept, 0.0]
    rng = random.Random(9)
    expected = [backoff_delay(RetryPolicy(base_s=0.1, max_s=1.0), n, rng, 0.0) for n in (1, 2)]
    assert slept == expected


async def test_retry_after_beyond_the_limit_is_not_waited_for() -> None:
    provider = FlakyProvider([ProviderError("busy", status=503, retryable=True, retry_after=900)])
    slept: list[float] = []

    async def fake_sleep(s: float) -> None:
        slept.append(s)

    with pytest.raises(ProviderError, match="exceeds max_retry_after_s"):
        await call_with_retries(
            provider,
            request(),
            policy=RetryPolicy(max_attempts=3, max_retry_after_s=60),
            rng=random.Random(0),
            sleep=fake_sleep,
        )
    assert provider.calls == 1 and slept == []


async def test_timeouts_are_recorded_as_timeout_and_events_built() -> None:
    provider = FlakyProvider([ProviderTimeout("slow", retryable=True)])
    records: list[AttemptRecord] = []
    result = await call_with_retries(
        provider,
        request(),
        policy=RetryPolicy(max_attempts=2, base_s=0.0),
        rng=random.Random(0),
        on_attempt=records.append,
    )
    assert result.text == "ok" and [r.outcome for r in records] == ["timeout", "ok"]
    event = records[0].to_event(agent="builder", task_id="t1", model="deep")
    assert isinstance(event, ModelCallFinished)
    assert (event.model, event.task_id, event.agent, event.outcome) == (
        "deep",
        "t1",
        "builder",
        "timeout",
    )
    assert records[1].to_event(agent="builder").reply == "ok"


async def test_make_provider_rejects_unknown_api() -> None:
    async with client() as c:
        assert isinstance(make_provider("ollama", "http://h:1", c), OllamaProvider)
        assert isinstance(make_provider("openai", "http://h:1", c), OpenAIProvider)
        with pytest.raises(ConfigError, match="unknown model api 'grpc'"):
            make_provider("grpc", "http://h:1", c)


def test_parse_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7", now=now) == 7.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("garbage", now=now) == 0.0
    assert parse_retry_after(None) == 0.0


@pytest.mark.anyio
async def test_an_agents_call_asks_for_half_the_context_or_max_tokens_as_its_reply_limit() -> None:
    # A fixed 1024-token limit cut a team plan of more than ~16 items short.
    from swarmlog.runtime.board import TaskView
    from swarmlog.runtime.calls import ModelCalls

    seen: list[dict[str, object]] = []

    async def handler(req: Request, resp: Response) -> None:
        seen.append(req.json())
        await resp.start(200)
        for line in ndjson(ollama_piece('{"ok": true}'), OLLAMA_DONE):
            await resp.write(line)
        await resp.end()

    task = TaskView(task_id="plan", title="Plan", task_kind="plan", role="director")
    calls = ModelCalls("director", seed=1)
    try:
        async with serve(handler) as url:
            for extra in ({"context_length": 32768}, {"max_tokens": 12000}, {}):
                profile = {"endpoint": url, "model": "qwen3:32b", "api": "ollama", **extra}
                outcome = await calls("deep", profile, task, "make a plan")
                assert not outcome.error
    finally:
        await calls.aclose()
    assert [b["options"]["num_predict"] for b in seen] == [8192, 12000, 4096]  # type: ignore[index]
