"""The simulated Ollama server over real sockets: protocol, slots, loads, faults, death."""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from swarmlog.errors import ProviderError
from swarmlog.providers import (
    ChatRequest,
    Message,
    OllamaProvider,
    OpenAIProvider,
    ProviderTimeout,
    RetryPolicy,
    call_with_retries,
)
from swarmlog.sim import BUSY_MESSAGE, GIB, Faults, SimModel, SimServer, sim_model
from swarmlog.sim.models import parse_keep_alive, token_count
from swarmlog.sim.perf import decode_step_s, kv_cache_bytes, measured_for, prefill_s

pytestmark = pytest.mark.anyio

# 1 simulated second = 1 ms: a 32B load from a 2 GB/s disk takes ~9 ms.
FAST = 0.001

SMALL = sim_model("qwen2.5:1.5b", 1.5, parallel=2)
BIG = sim_model("qwen3:32b", 32.8, parallel=2)


@asynccontextmanager
async def running(
    *models: SimModel, **kw: Any
) -> AsyncIterator[tuple[SimServer, httpx.AsyncClient]]:
    kw.setdefault("time_scale", FAST)
    async with SimServer(models or (SMALL, BIG), **kw) as server, httpx.AsyncClient() as c:
        yield server, c


def ask(model: str, text: str = "hello", **kw: Any) -> ChatRequest:
    kw.setdefault("timeout_s", 10.0)
    return ChatRequest(model=model, messages=(Message("user", text),), **kw)


async def ps(server: SimServer, c: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    resp = await c.get(f"{server.url}/api/ps")
    return {m["name"]: m for m in resp.json()["models"]}


# Protocol


async def test_informational_endpoints() -> None:
    async with running() as (server, c):
        root = await c.get(server.url + "/")
        version = (await c.get(server.url + "/api/version")).json()
        tags = (await c.get(server.url + "/api/tags")).json()["models"]
        show = await c.post(server.url + "/api/show", json={"model": "qwen3:32b"})
        missing = await c.post(server.url + "/api/show", json={"model": "nope"})
        v1 = (await c.get(server.url + "/v1/models")).json()
        unknown = await c.get(server.url + "/api/nothing")
    assert root.status_code == 200 and root.text == "Ollama is running"
    assert version == {"version": server.version}
    assert [t["name"] for t in tags] == ["qwen2.5:1.5b", "qwen3:32b"]
    assert tags[1]["size"] == BIG.size_bytes
    assert tags[1]["details"]["parameter_size"] == "32.8B"
    assert tags[1]["details"]["quantization_level"] == "Q4_K_M"
    assert show.status_code == 200 and show.json()["model_info"]["qwen2.block_count"] == 64
    assert missing.status_code == 404 and "error" in missing.json()
    assert [m["id"] for m in v1["data"]] == ["qwen2.5:1.5b", "qwen3:32b"]
    assert unknown.status_code == 404


async def test_non_streaming_chat_reports_integer_ns_timings_and_uses_reply_fn() -> None:
    calls: list[tuple[str, list[dict[str, Any]], dict[str, Any]]] = []

    def reply(model: str, messages: list[dict[str, Any]], options: dict[str, Any]) -> str:
        calls.append((model, messages, options))
        return '{"verdict": "approve"}'

    async with running(reply_fn=reply) as (server, c):
        body = {
            "model": "qwen3:32b",
            "messages": [{"role": "user", "content": "x" * 400}],
            "stream": False,
            "format": "json",
            "options": {"num_ctx": 4096, "num_predict": 100, "temperature": 0.2},
        }
        data = (await c.post(server.url + "/api/chat", json=body)).json()
    assert data["done"] is True and data["done_reason"] == "stop"
    assert data["message"] == {"role": "assistant", "content": '{"verdict": "approve"}'}
    for field in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(data[field], int) and data[field] > 0
    assert data["load_duration"] < data["total_duration"]
    assert data["prompt_eval_count"] == 100 and data["eval_count"] == token_count(
        '{"verdict": "approve"}'
    )
    assert calls[0][0] == "qwen3:32b" and calls[0][2]["format"] == "json"
    assert calls[0][2]["num_ctx"] == 4096


async def test_num_predict_truncates_with_done_reason_length() -> None:
    async with running(reply_fn=lambda m, msgs, o: "word " * 100) as (server, c):
        result = await OllamaProvider(server.url, c).chat(ask("qwen2.5:1.5b", max_tokens=5))
    assert result.finish_reason == "length" and result.completion_tokens == 5
    assert len(result.text) == 20


async def test_openai_endpoint_streams_with_usage_and_no_timings() -> None:
    async with running() as (server, c):
        result = await OpenAIProvider(server.url, c).chat(ask("qwen2.5:1.5b", "ping " * 8))
        plain = await c.post(
            server.url + "/v1/chat/completions",
            json={"model": "qwen2.5:1.5b", "messages": [{"role": "user", "content": "hi"}]},
        )
        missing = await c.post(
            server.url + "/v1/chat/completions", json={"model": "zz", "messages": []}
        )
    assert json.loads(result.text)["status"] == "done"
    assert result.prompt_tokens == token_count("ping " * 8) and result.completion_tokens > 0
    data = plain.json()
    assert data["object"] == "chat.completion" and "usage" in data
    assert "total_duration" not in data
    assert missing.status_code == 404 and "not found" in missing.json()["error"]["message"]


async def test_unknown_model_is_a_404_the_provider_turns_into_a_pull_hint() -> None:
    async with running() as (server, c):
        with pytest.raises(ProviderError, match="ollama pull llama9") as info:
            await OllamaProvider(server.url, c).chat(ask("llama9"))
    assert info.value.status == 404


# Loads, residency, keep-alive, VRAM


async def test_first_call_loads_then_the_model_is_resident() -> None:
    async with running(disk_bytes_s=1e9) as (server, c):
        provider = OllamaProvider(server.url, c)
        cold = await provider.chat(ask("qwen3:32b", num_ctx=8192))
        warm = await provider.chat(ask("qwen3:32b", num_ctx=8192))
        resident = await ps(server, c)
    expected_load_ms = BIG.size_bytes / 1e9 * FAST * 1000
    assert cold.load_ms >= expected_load_ms * 0.9
    assert warm.load_ms == 0.0
    entry = resident["qwen3:32b"]
    assert entry["size_vram"] == entry["size"] > BIG.size_bytes  # weights + KV cache
    assert entry["size"] == BIG.size_bytes + kv_cache_bytes(32.8, 8192, 2)
    assert entry["context_length"] == 8192
    expires = datetime.fromisoformat(entry["expires_at"].replace("Z", "+00:00"))
    assert expires > datetime.now(UTC)
    assert server.stats.loads == ["qwen3:32b"]


async def test_loading_a_model_that_does_not_fit_evicts_the_shortest_keep_alive_first() -> None:
    a = SimModel("a", 7.6, 5 * GIB, 1, 2048, 600.0)
    b = SimModel("b", 7.6, 5 * GIB, 1, 2048, 60.0)
    d = SimModel("d", 7.6, 5 * GIB, 1, 2048, 300.0)
    async with running(a, b, d, vram_bytes=11 * GIB) as (server, c):
        provider = OllamaProvider(server.url, c)
        await provider.chat(ask("a"))
        await provider.chat(ask("b"))
        assert set(await ps(server, c)) == {"a", "b"}
        await provider.chat(ask("d"))
        resident = await ps(server, c)
    assert set(resident) == {"a", "d"}
    assert server.stats.evictions == ["b"]


async def test_a_busy_model_is_not_evicted_the_load_waits_for_it() -> None:
    a = SimModel("a", 7.6, 5 * GIB, 1, 2048, 600.0)
    b = SimModel("b", 7.6, 5 * GIB, 1, 2048, 600.0)
    long_reply = "z" * 4000  # ~1000 tokens of decode: ~22 ms real for a 7B at FAST
    async with running(a, b, vram_bytes=6 * GIB, reply_fn=lambda m, msgs, o: long_reply) as (
        server,
        c,
    ):
        provider = OllamaProvider(server.url, c)
        first = asyncio.create_task(provider.chat(ask("a")))
        while server.stats.max_busy.get("a", 0) < 1:
            await asyncio.sleep(0.001)
        second = await provider.chat(ask("b"))
        first_result = await first
    assert first_result.text == long_reply and second.text == long_reply
    assert server.stats.evictions == ["a"] and server.stats.loads == ["a", "b"]


async def test_a_model_larger_than_vram_spills_to_the_cpu() -> None:
    async with running(BIG, vram_bytes=10 * GIB) as (server, c):
        await OllamaProvider(server.url, c).chat(ask("qwen3:32b"))
        entry = (await ps(server, c))["qwen3:32b"]
    assert entry["size_vram"] == 10 * GIB < entry["size"]


async def wait_for(predicate: Any, limit_s: float = 5.0) -> None:
    deadline = time.monotonic() + limit_s
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def test_keep_alive_expiry_and_per_request_override() -> None:
    brief = SimModel("brief", 1.5, GIB, 1, 2048, 400.0)  # 400 simulated s = 0.4 s real
    async with running(brief, SMALL) as (server, c):
        provider = OllamaProvider(server.url, c)
        await provider.chat(ask("brief"))
        t_done = time.monotonic()
        assert "brief" in await ps(server, c)

        async def gone() -> bool:
            return "brief" not in await ps(server, c)

        await wait_for(gone)
        assert time.monotonic() - t_done >= 0.35
        await provider.chat(ask("qwen2.5:1.5b", keep_alive="0"))
        assert "qwen2.5:1.5b" not in await ps(server, c)
        await provider.chat(ask("qwen2.5:1.5b", keep_alive="-1"))
        await asyncio.sleep(0.05)
        forever = (await ps(server, c))["qwen2.5:1.5b"]
    assert forever["expires_at"].startswith("2")
    assert datetime.fromisoformat(forever["expires_at"].replace("Z", "+00:00")).year > 2200


async def test_changing_num_ctx_reloads_the_model() -> None:
    async with running() as (server, c):
        provider = OllamaProvider(server.url, c)
        await provider.chat(ask("qwen2.5:1.5b", num_ctx=4096))
        await provider.chat(ask("qwen2.5:1.5b", num_ctx=4096))
        await provider.chat(ask("qwen2.5:1.5b", num_ctx=8192))
        ctx = (await ps(server, c))["qwen2.5:1.5b"]["context_length"]
    assert server.stats.loads == ["qwen2.5:1.5b", "qwen2.5:1.5b"] and ctx == 8192


# Slots and queues


async def test_slots_cap_concurrency_and_extra_requests_wait_without_limit() -> None:
    model = SimModel("m", 7.6, GIB, 2, 2048, 600.0)
    reply = "y" * 2000
    async with running(model, max_queue=1, reply_fn=lambda m, msgs, o: reply) as (server, c):
        provider = OllamaProvider(server.url, c)
        await provider.chat(ask("m"))  # loaded first: waiting for a slot is then unbounded
        t0 = time.perf_counter()
        results = await asyncio.gather(*(provider.chat(ask("m", f"q{i}")) for i in range(5)))
        elapsed = time.perf_counter() - t0
    assert all(r.text == reply for r in results)
    assert server.stats.max_busy["m"] == 2 and server.stats.rejected == 0
    # five requests through two slots take at least three rounds of the slowest single decode
    one_round = token_count(reply) * decode_step_s(7.6, 2) * FAST
    assert elapsed >= 2.5 * one_round


async def test_only_requests_waiting_for_a_load_are_refused_past_max_queue() -> None:
    slow_disk = 1e8  # a 1.5B load takes ~10 simulated s = 10 ms real
    async with running(SMALL, max_queue=1, disk_bytes_s=slow_disk) as (server, c):
        provider = OllamaProvider(server.url, c)
        outcomes = await asyncio.gather(
            *(provider.chat(ask("qwen2.5:1.5b", f"n{i}")) for i in range(3)),
            return_exceptions=True,
        )
    refused = [o for o in outcomes if isinstance(o, ProviderError)]
    assert len(refused) == 2 and server.stats.rejected == 2
    said = " ".join(BUSY_MESSAGE.split())  # the provider prints the message on one line
    assert all(e.status == 503 and e.retryable and said in str(e) for e in refused)


async def test_aggregate_throughput_grows_with_busy_slots_as_measured() -> None:
    for params in (1.5, 7.6, 32.8):
        single = 1 / decode_step_s(params, 1)
        assert 8 / decode_step_s(params, 8) > 4 * single
        assert 32 / decode_step_s(params, 32) > 16 * single
    assert measured_for(30).name == "qwen2.5-32b" and measured_for(8).name == "qwen2.5-7b"
    assert prefill_s(32.8, 2048) < 2048 * decode_step_s(32.8, 1) / 50  # prefill ≫ decode speed
    assert decode_step_s(1.5, 64) == pytest.approx(2 * decode_step_s(1.5, 32))
    assert kv_cache_bytes(32.8, 8192, 2) == 2 * 64 * 8 * 128 * 8192 * 2 * 2


def test_parse_keep_alive() -> None:
    assert parse_keep_alive("5m") == 300.0
    assert parse_keep_alive("1h30m") == 5400.0
    assert parse_keep_alive(90) == 90.0
    assert parse_keep_alive("-1") == math.inf
    assert parse_keep_alive("0") == 0.0
    assert parse_keep_alive("soon") is None and parse_keep_alive(None) is None


# Faults


async def fault_pattern(seed: int) -> list[str]:
    faults = {"*": Faults(error_rate=0.25, busy_rate=0.25, retry_after_s=3)}
    out = []
    async with running(SMALL, faults=faults, seed=seed) as (server, c):
        provider = OllamaProvider(server.url, c)
        for i in range(16):
            try:
                await provider.chat(ask("qwen2.5:1.5b", f"task {i}"))
                out.append("ok")
            except ProviderError as exc:
                out.append(f"{exc.status}:{exc.retry_after:g}")
    return out


async def test_fault_injection_is_deterministic_per_seed() -> None:
    first = await fault_pattern(seed=11)
    again = await fault_pattern(seed=11)
    other = await fault_pattern(seed=12)
    assert first == again
    assert first != other
    assert {"ok", "500:0", "503:3"} <= set(first)


async def test_fail_first_then_retries_succeed() -> None:
    faults = {"qwen2.5:1.5b": Faults(fail_first=2)}
    async with running(SMALL, faults=faults) as (server, c):
        result = await call_with_retries(
            OllamaProvider(server.url, c),
            ask("qwen2.5:1.5b"),
            policy=RetryPolicy(max_attempts=3, base_s=0.001, max_s=0.002),
            rng=random.Random(0),
        )
    assert result.completion_tokens > 0
    assert server.stats.faults == [("qwen2.5:1.5b", "error")] * 2


async def test_injected_drop_and_hang_surface_as_retryable_errors() -> None:
    async with running(SMALL, faults={"*": Faults(drop_rate=1.0)}) as (server, c):
        with pytest.raises(ProviderError) as dropped:
            await OllamaProvider(server.url, c).chat(ask("qwen2.5:1.5b", "long " * 40))
    assert dropped.value.retryable
    async with running(SMALL, faults={"*": Faults(hang_rate=1.0)}) as (server, c):
        with pytest.raises(ProviderTimeout):
            await OllamaProvider(server.url, c).chat(ask("qwen2.5:1.5b", timeout_s=0.15))


async def test_slowdown_fault_makes_the_call_slower() -> None:
    reply = "s" * 2000
    async with running(BIG, reply_fn=lambda m, msgs, o: reply) as (server, c):
        provider = OllamaProvider(server.url, c)
        await provider.chat(ask("qwen3:32b", "warm"))
        normal = await provider.chat(ask("qwen3:32b", "normal"))
    slow_faults = {"*": Faults(slow_rate=1.0, slow_factor=10.0)}
    async with running(BIG, faults=slow_faults, reply_fn=lambda m, msgs, o: reply) as (server, c):
        provider = OllamaProvider(server.url, c)
        await provider.chat(ask("qwen3:32b", "warm"))
        slow = await provider.chat(ask("qwen3:32b", "normal"))
    decode_ms = token_count(reply) * decode_step_s(32.8, 1) * FAST * 1000
    assert normal.total_ms >= decode_ms * 0.9
    assert slow.total_ms >= 10 * decode_ms * 0.9 and slow.total_ms > normal.total_ms
    assert server.stats.faults == [("qwen3:32b", "slow")] * 2


async def test_clients_that_give_up_free_their_slot_and_place_in_the_queue() -> None:
    model = SimModel("m", 7.6, GIB, 1, 2048, 600.0)
    reply = "w" * 400

    def reply_fn(model: str, messages: list[dict[str, Any]], options: dict[str, Any]) -> str:
        return reply * 1000 if messages[-1]["content"] == "holder" else reply  # ~2 s of decode

    async with running(model, reply_fn=reply_fn) as (server, c):
        provider = OllamaProvider(server.url, c)
        await provider.chat(ask("m"))
        holder = asyncio.create_task(provider.chat(ask("m", "holder", max_tokens=200_000)))
        waiter = asyncio.create_task(provider.chat(ask("m", "waiter")))

        async def both_arrived() -> bool:
            return server.stats.requests["m"] == 3

        async def both_abandoned() -> bool:
            return server.stats.abandoned == 2

        await wait_for(both_arrived)
        waiter.cancel()  # gives up while queued for the slot
        holder.cancel()  # gives up while decoding in the slot
        await asyncio.gather(holder, waiter, return_exceptions=True)
        await wait_for(both_abandoned)
        t0 = time.perf_counter()
        after = await provider.chat(ask("m", "after"))
    assert after.text == reply and time.perf_counter() - t0 < 1.0
    assert server.stats.max_busy["m"] == 1


# Server death


async def test_server_dies_at_the_given_time_and_revives_empty() -> None:
    async with running(SMALL, die_at_s=1000.0, revive_after_s=200.0) as (server, c):
        provider = OllamaProvider(server.url, c)
        await provider.chat(ask("qwen2.5:1.5b"))
        assert server.stats.loads == ["qwen2.5:1.5b"]

        async def dead() -> bool:
            return not server.is_up

        async def alive() -> bool:
            return server.is_up

        await wait_for(dead)
        assert server.stats.deaths == 1 and server.sim_now() >= 1000.0
        with pytest.raises(ProviderError, match="cannot connect") as info:
            await provider.chat(ask("qwen2.5:1.5b", "while dead"))
        assert info.value.retryable
        await wait_for(alive)
        assert server.sim_now() >= 1200.0
        assert await ps(server, c) == {}
        await provider.chat(ask("qwen2.5:1.5b", "after"))
    assert server.stats.loads == ["qwen2.5:1.5b", "qwen2.5:1.5b"]


async def test_death_drops_a_request_in_flight() -> None:
    reply = "d" * 40000  # ~10k tokens of decode: ~0.3 s real
    async with running(SMALL, reply_fn=lambda m, msgs, o: reply) as (server, c):
        call = asyncio.create_task(
            OllamaProvider(server.url, c).chat(ask("qwen2.5:1.5b", max_tokens=20_000))
        )
        while server.stats.max_busy.get("qwen2.5:1.5b", 0) < 1:
            await asyncio.sleep(0.001)
        await server.akill()
        with pytest.raises(ProviderError) as info:
            await call
    assert info.value.retryable and not isinstance(info.value, ProviderTimeout)
    assert "retrying may help" in str(info.value)


def test_threaded_server_serves_sync_clients_and_can_be_killed() -> None:
    with SimServer([SMALL], time_scale=FAST) as server:
        assert httpx.get(server.url + "/").text == "Ollama is running"
        body = {"model": "qwen2.5:1.5b", "messages": [{"role": "user", "content": "hi"}]}
        lines = httpx.post(server.url + "/api/chat", json=body).text.splitlines()
        assert json.loads(lines[-1])["done"] is True and len(lines) >= 2
        server.kill()
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.url + "/", timeout=1.0)


def test_a_threaded_server_that_cannot_bind_raises_and_cleans_up() -> None:
    with SimServer([SMALL], time_scale=FAST) as first:
        second = SimServer([SMALL], port=first.port)
        with pytest.raises(OSError):
            second.start()
        assert second._thread is None  # no loop thread left behind


def test_cli_model_sizes_come_from_the_tag() -> None:
    from swarmlog.sim.__main__ import model_from_name

    assert model_from_name("qwen3:32b", parallel=2, keep_alive_s=60).params_b == 32.0
    assert model_from_name("qwen2.5:1.5b", parallel=1, keep_alive_s=60).params_b == 1.5
    assert model_from_name("mystery", parallel=1, keep_alive_s=60).params_b == 7.0


def test_run_help_names_every_packaged_scenario(capsys) -> None:
    from swarmlog.cli import main
    from swarmlog.sim.scenarios import SCENARIOS

    assert main(["run", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in SCENARIOS)
