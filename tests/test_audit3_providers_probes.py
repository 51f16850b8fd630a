"""Server probes against loopback servers whose replies are malformed or partial.

A probe's answer is a reading (``model_server_sampled``), whatever the server sends: the monitor
appends it every few seconds and ``swarmlog doctor`` / ``init`` print it, so a crash here would
stop the monitor. Each reading must also survive a round trip through a real log on disk.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from swarmlog.events import ModelServerSampled
from swarmlog.log import FileLog, FileReader
from swarmlog.servers import BadReply, probe_server, show_model
from swarmlog.sim.http import Request, Response, serve

pytestmark = pytest.mark.anyio

Route = tuple[int, str, str]  # status, body, content type


def js(obj: object) -> Route:
    return 200, json.dumps(obj), "application/json"


OLLAMA_OK: dict[str, Route] = {
    "/api/version": js({"version": "0.12.3"}),
    "/api/ps": js({"models": [{"name": "qwen3:32b", "size": 100, "size_vram": 90}]}),
    "/api/tags": js({"models": [{"name": "qwen3:32b"}]}),
}
VLLM_MODELS = js({"object": "list", "data": [{"id": "served-32b"}]})


@asynccontextmanager
async def serving(routes: dict[str, Route]) -> AsyncIterator[str]:
    async def handler(req: Request, resp: Response) -> None:
        status, body, ctype = routes.get(req.path, (404, "404 page not found", "text/plain"))
        await resp.send(status, body, content_type=ctype)

    async with serve(handler) as url:
        yield url


def through_the_log(tmp_path: Path, sample: ModelServerSampled) -> ModelServerSampled:
    log = FileLog(tmp_path / "events")
    try:
        log.append([sample])
    finally:
        log.close()
    reader = FileReader(tmp_path / "events")
    try:
        (back,) = reader.poll()
    finally:
        reader.close()
    assert isinstance(back, ModelServerSampled)
    return back


@pytest.mark.parametrize(
    ("path", "route", "said"),
    [
        ("/api/ps", js([]), "GET /api/ps answered a list, not a JSON object"),
        ("/api/ps", js(None), "GET /api/ps answered null, not a JSON object"),
        ("/api/ps", js({"models": {"qwen3:32b": {}}}), "'models' as an object, not a list"),
        ("/api/tags", js({"models": "qwen3:32b"}), "'models' as a string, not a list"),
        ("/api/version", js(["0.12.3"]), "GET /api/version answered a list"),
        (
            "/api/ps",
            (200, '{"models": [{"na', "application/json"),
            "GET /api/ps answered malformed",
        ),
        ("/api/tags", (200, "<html>login</html>", "text/html"), "GET /api/tags answered malformed"),
        ("/api/ps", (500, "<h1>oops</h1>", "text/html"), "GET /api/ps answered HTTP 500"),
    ],
)
async def test_ollama_probe_of_a_bad_reply_is_an_unreachable_reading_naming_the_path(
    tmp_path: Path, path: str, route: Route, said: str
) -> None:
    async with serving({**OLLAMA_OK, path: route}) as url, httpx.AsyncClient(timeout=5) as c:
        sample = await probe_server(c, url, "ollama")
    back = through_the_log(tmp_path, sample)
    assert not back.reachable and said in back.error
    assert "\n" not in back.error and back.resident == () and back.available == ()


async def test_ollama_probe_keeps_what_it_can_read_of_odd_entries(tmp_path: Path) -> None:
    ps = {
        "models": [
            "qwen3:1.7b",  # not an object: skipped
            None,
            {"model": "no-name:7b", "size": "big", "size_vram": 1.5e9, "context_length": 1e400},
            {"name": "qwen3:32b", "size": -5, "size_vram": True, "expires_at": None},
            {"size": 100},  # no name: skipped
        ]
    }
    tags = {"models": [{"name": "qwen3:32b"}, {"digest": "x"}, 7, {"model": "no-name:7b"}]}
    routes = {**OLLAMA_OK, "/api/ps": js(ps), "/api/tags": js(tags)}
    async with serving(routes) as url, httpx.AsyncClient(timeout=5) as c:
        sample = await probe_server(c, url, "ollama")
    back = through_the_log(tmp_path, sample)
    assert back.reachable and back.error == ""
    assert back.available == ("qwen3:32b", "no-name:7b")
    assert [
        (r.name, r.size, r.size_vram, r.context_length, r.expires_at) for r in back.resident
    ] == [
        ("no-name:7b", 0, 1_500_000_000, 0, ""),
        ("qwen3:32b", 0, 0, 0, ""),
    ]


@pytest.mark.parametrize(
    ("route", "said"),
    [
        (js([{"id": "served-32b"}]), "GET /v1/models answered a list, not a JSON object"),
        (js({"data": "served-32b"}), "'data' as a string, not a list"),
        ((200, "not json", "text/plain"), "GET /v1/models answered malformed JSON"),
    ],
)
async def test_openai_probe_of_a_bad_models_reply_is_an_unreachable_reading(
    tmp_path: Path, route: Route, said: str
) -> None:
    async with serving({"/v1/models": route}) as url, httpx.AsyncClient(timeout=5) as c:
        sample = await probe_server(c, url + "/v1", "openai")
    back = through_the_log(tmp_path, sample)
    assert not back.reachable and said in back.error and "\n" not in back.error


async def test_openai_probe_skips_entries_without_an_id(tmp_path: Path) -> None:
    models = js({"data": [{"id": "served-32b"}, {}, "x", {"id": None}]})
    async with serving({"/v1/models": models}) as url, httpx.AsyncClient(timeout=5) as c:
        sample = await probe_server(c, url, "openai")
    back = through_the_log(tmp_path, sample)
    assert back.reachable and back.available == ("served-32b",)  # not 'None'


async def test_vllm_metrics_with_infinite_or_nan_gauges_are_no_reading(tmp_path: Path) -> None:
    metrics = (
        'vllm:num_requests_running{model_name="served-32b"} +Inf\n'
        'vllm:num_requests_waiting{model_name="served-32b"} NaN\n'
        'vllm:kv_cache_usage_perc{model_name="served-32b"} +Inf\n'
        'vllm:num_requests_waiting{model_name="other" 3\n'  # a torn line: ignored
    )
    routes = {"/v1/models": VLLM_MODELS, "/metrics": (200, metrics, "text/plain")}
    async with serving(routes) as url, httpx.AsyncClient(timeout=5) as c:
        sample = await probe_server(c, url, "openai")
    back = through_the_log(tmp_path, sample)
    assert back.reachable and (back.running, back.waiting, back.kv_cache_usage) == (
        None,
        None,
        None,
    )


async def test_show_model_refuses_a_reply_that_is_not_an_object() -> None:
    routes = {"/api/show": js(["model_info"])}
    async with serving(routes) as url, httpx.AsyncClient(timeout=5) as c:
        with pytest.raises(BadReply, match="POST /api/show for qwen3:32b answered a list"):
            await show_model(c, url, "qwen3:32b")
    # BadReply is a ValueError, which is what show_model's callers catch
    assert issubclass(BadReply, ValueError)


async def test_vllm_kv_cache_use_of_several_engines_is_their_mean_not_their_sum(
    tmp_path: Path,
) -> None:
    # A data-parallel vLLM labels each engine's series; requests add up across engines, but
    # each engine's KV-cache use is a fraction of its own cache: 0.6 and 0.8 read as 1.4.
    metrics = (
        'vllm:num_requests_running{engine="0",model_name="served-32b"} 3.0\n'
        'vllm:num_requests_running{engine="1",model_name="served-32b"} 4.0\n'
        'vllm:num_requests_waiting{engine="0",model_name="served-32b"} 1.0\n'
        'vllm:num_requests_waiting{engine="1",model_name="served-32b"} 0.0\n'
        'vllm:kv_cache_usage_perc{engine="0",model_name="served-32b"} 0.6\n'
        'vllm:kv_cache_usage_perc{engine="1",model_name="served-32b"} 0.8\n'
    )
    routes = {"/v1/models": VLLM_MODELS, "/metrics": (200, metrics, "text/plain")}
    async with serving(routes) as url, httpx.AsyncClient(timeout=5) as c:
        sample = await probe_server(c, url, "openai")
    back = through_the_log(tmp_path, sample)
    assert (back.running, back.waiting) == (7, 1)
    assert back.kv_cache_usage == pytest.approx(0.7)


# A server that answers a byte at a time


@asynccontextmanager
async def dripping(routes: dict[str, Route], slow: str) -> AsyncIterator[str]:
    """Serve ``routes``; ``slow`` sends its body one byte every 50 ms (each read is quick)."""

    async def handler(req: Request, resp: Response) -> None:
        status, body, ctype = routes.get(req.path, (404, "404 page not found", "text/plain"))
        if req.path != slow:
            await resp.send(status, body, content_type=ctype)
            return
        await resp.start(status, content_type=ctype)
        for byte in body.encode() * 50:
            await resp.write(bytes([byte]))
            await asyncio.sleep(0.05)
        await resp.end()

    async with serve(handler) as url:
        yield url


@pytest.mark.parametrize(
    ("api", "routes", "slow"),
    [
        ("ollama", OLLAMA_OK, "/api/tags"),
        ("openai", {"/v1/models": VLLM_MODELS}, "/v1/models"),
    ],
)
async def test_a_probe_of_a_dripping_server_ends_within_its_deadline(
    tmp_path: Path, api: str, routes: dict[str, Route], slow: str
) -> None:
    # httpx's timeout bounds each read; a byte every 50 ms never trips a 0.3 s read timeout,
    # so the probe (and the monitor's sampling loop awaiting it) never ended.
    async with dripping(routes, slow) as url, httpx.AsyncClient(timeout=0.3) as c:
        t0 = time.perf_counter()
        sample = await asyncio.wait_for(probe_server(c, url, api), timeout=10)
        elapsed = time.perf_counter() - t0
    back = through_the_log(tmp_path, sample)
    assert not back.reachable and elapsed < 3.0
    assert back.error == f"ReadTimeout: GET {slow}: no complete answer within 0.6s"


async def test_dripping_metrics_are_no_reading_and_show_model_times_out() -> None:
    metrics = 'vllm:num_requests_running{model_name="served-32b"} 3.0\n'
    routes = {
        "/v1/models": VLLM_MODELS,
        "/metrics": (200, metrics, "text/plain"),
        "/api/show": js({"model_info": {}}),
    }
    async with dripping(routes, "/metrics") as url, httpx.AsyncClient(timeout=0.3) as c:
        sample = await asyncio.wait_for(probe_server(c, url, "openai"), timeout=10)
        assert sample.reachable and sample.available == ("served-32b",)
        assert sample.running is None
    async with dripping(routes, "/api/show") as url, httpx.AsyncClient(timeout=0.3) as c:
        with pytest.raises(httpx.ReadTimeout, match="POST /api/show: no complete answer"):
            await asyncio.wait_for(show_model(c, url, "qwen3:32b"), timeout=10)
