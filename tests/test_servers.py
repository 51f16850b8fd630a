"""Server probes against real loopback HTTP servers speaking Ollama's and vLLM's protocols."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from swarmlog.servers import base_url, parse_prometheus, probe_all, probe_server, show_model

OLLAMA = {
    "/api/version": {"version": "0.12.3"},
    "/api/tags": {
        "models": [
            {
                "name": "qwen3:32b",
                "model": "qwen3:32b",
                "modified_at": "2026-01-27T22:00:00Z",
                "size": 20201253588,
                "digest": "abc",
                "details": {"family": "qwen3", "parameter_size": "32.8B"},
            },
            {"name": "qwen3:1.7b", "model": "qwen3:1.7b", "size": 1359302318, "digest": "def"},
        ]
    },
    "/api/ps": {
        "models": [
            {
                "name": "qwen3:32b",
                "model": "qwen3:32b",
                "size": 21867290624,
                "digest": "abc",
                "details": {"family": "qwen3"},
                "expires_at": "2026-01-28T04:45:00.1+01:00",
                "size_vram": 19327352832,
                "context_length": 8192,
            }
        ]
    },
}
SHOW = {"model_info": {"qwen3.block_count": 64, "qwen3.attention.head_count_kv": 8}}
METRICS = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="Qwen/Qwen3.5-32B"} 3.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="Qwen/Qwen3.5-32B"} 5.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="Qwen/Qwen3.5-32B"} 0.42
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{le="0.1",model_name="Qwen/Qwen3.5-32B"} 7.0
vllm:prompt_tokens_total{model_name="Qwen/Qwen3.5-32B"} 1234.0
"""


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, status, body, ctype="application/json"):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        kind = self.server.kind  # type: ignore[attr-defined]
        if kind == "ollama" and self.path in OLLAMA:
            return self._send(200, OLLAMA[self.path])
        if kind == "vllm" and self.path == "/v1/models":
            return self._send(200, {"object": "list", "data": [{"id": "Qwen/Qwen3.5-32B"}]})
        if kind == "vllm" and self.path == "/metrics":
            return self._send(200, METRICS, "text/plain; version=0.0.4")
        return self._send(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        if self.path == "/api/show" and body.get("model") == "qwen3:32b":
            return self._send(200, SHOW)
        return self._send(404, {"error": f"model '{body.get('model')}' not found"})


@pytest.fixture
def server() -> Iterator[callable]:
    started = []

    def start(kind: str) -> str:
        srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        srv.kind = kind  # type: ignore[attr-defined]
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        started.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for srv in started:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_ollama_probe_reads_ps_tags_and_version(server):
    url = server("ollama")
    async with httpx.AsyncClient(timeout=5) as client:
        s = await probe_server(client, url, "ollama")
        show = await show_model(client, url, "qwen3:32b")
    assert s.reachable and s.version == "0.12.3"
    assert s.available == ("qwen3:32b", "qwen3:1.7b")
    (r,) = s.resident
    assert r.name == "qwen3:32b" and r.size_vram < r.size and r.context_length == 8192
    assert r.expires_at.startswith("2026-01-28T04:45")
    assert show["model_info"]["qwen3.block_count"] == 64


@pytest.mark.anyio
async def test_vllm_probe_reads_metrics(server):
    url = server("vllm") + "/v1"
    async with httpx.AsyncClient(timeout=5) as client:
        s = await probe_server(client, url, "openai")
    assert s.reachable and s.available == ("Qwen/Qwen3.5-32B",)
    assert (s.running, s.waiting, s.kv_cache_usage) == (3, 5, 0.42)


@pytest.mark.anyio
async def test_unreachable_is_a_reading(server):
    url = server("ollama")
    port = int(url.rsplit(":", 1)[1])
    async with httpx.AsyncClient(timeout=2) as client:
        # an OpenAI probe of an Ollama-only server gets 404 on /v1/models
        wrong = await probe_server(client, url, "openai")
        samples = await probe_all(
            client, [(url, "ollama"), (url, "ollama"), (f"http://127.0.0.1:{port - 0}x", "sim")]
        )
    assert not wrong.reachable and "404" in wrong.error
    assert len(samples) == 2  # duplicates probed once


@pytest.mark.anyio
async def test_closed_port_is_unreachable():
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    async with httpx.AsyncClient(timeout=2) as client:
        s = await probe_server(client, f"http://127.0.0.1:{port}", "ollama")
    assert not s.reachable and "ConnectError" in s.error


def test_prometheus_parser_and_base_url():
    series = parse_prometheus(METRICS)
    assert series["vllm:num_requests_running"][0][0]["model_name"] == "Qwen/Qwen3.5-32B"
    assert series["vllm:prompt_tokens_total"][0][1] == 1234.0
    assert base_url("http://h:8001/v1/") == "http://h:8001"
    assert base_url("http://h:11434") == "http://h:11434"
