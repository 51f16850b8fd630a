"""The monitor probes model servers the way the night's calls reach them.

The night's calls reach a server on this machine or the local network directly and any other
host through the environment's proxy (``swarmlog.runtime.calls``). The monitor probed every server
through ``HTTP_PROXY``: with a proxy set for the internet, the local Ollama read unreachable
('GET /api/version answered HTTP 502') and routing refused it while the calls would have worked.
The monitor runs for real on a log in ``tmp_path``, against loopback servers.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from swarmlog.events import ConfigLoaded, ModelServerSampled, RunStarted
from swarmlog.log import FileLog
from swarmlog.runtime.monitor import Monitor
from swarmlog.sim.http import Request, Response, serve
from swarmlog.workspace import Workspace

pytestmark = pytest.mark.anyio

ROUTES: dict[str, object] = {
    "/api/version": {"version": "0.12.3"},
    "/api/ps": {"models": []},
    "/api/tags": {"models": [{"name": "qwen3:32b", "size": 19_000_000_000, "details": {}}]},
}
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


async def ollama(req: Request, resp: Response) -> None:
    if req.path in ROUTES:
        await resp.send(200, json.dumps(ROUTES[req.path]), content_type="application/json")
    else:
        await resp.send(404, "404 page not found", content_type="text/plain")


async def monitor_samples(tmp_path: Path, endpoints: dict[str, str]) -> list[ModelServerSampled]:
    """Run the monitor on a night whose models are at ``endpoints`` until it has sampled each."""
    ws = Workspace(tmp_path / "ws")
    log = FileLog(ws.events)
    models = {
        name: {"endpoint": url, "model": "qwen3:32b", "api": "ollama"}
        for name, url in endpoints.items()
    }
    log.append(
        [
            RunStarted(goal="g", run="r", actor="supervisor"),
            ConfigLoaded(config={"models": models}, run="r", actor="supervisor"),
        ]
    )
    monitor = Monitor(ws, log, interval_s=30.0)
    running = asyncio.create_task(monitor.run())
    try:
        for _ in range(200):
            samples = [e for e in log.read() if isinstance(e, ModelServerSampled)]
            if len(samples) >= len(endpoints):
                return samples
            await asyncio.sleep(0.05)
        raise AssertionError("the monitor sampled no model server in 10 s")
    finally:
        monitor.stop()
        await asyncio.wait_for(running, 10.0)
        log.close()


async def test_a_local_server_is_probed_directly_whatever_the_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxied: list[str] = []

    async def proxy(req: Request, resp: Response) -> None:  # the internet's proxy, not ours
        proxied.append(req.headers.get("host", ""))
        await resp.send(502, "bad gateway", content_type="text/plain")

    async with serve(proxy) as proxy_url, serve(ollama) as ollama_url:
        for var in PROXY_VARS:
            monkeypatch.setenv(var, proxy_url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        remote = "http://models.example.com:11434"
        samples = await monitor_samples(tmp_path, {"local": ollama_url, "remote": remote})
    by_endpoint = {s.endpoint: s for s in samples}
    local = by_endpoint[ollama_url]
    assert local.reachable, local.error
    assert local.version == "0.12.3" and local.available == ("qwen3:32b",)
    # A host on the internet still goes through the environment's proxy, as the calls' do.
    assert not by_endpoint[remote].reachable
    assert "502" in by_endpoint[remote].error
    assert proxied and set(proxied) == {"models.example.com:11434"}, proxied


async def test_an_unreadable_ca_file_reads_unreachable_with_the_calls_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-ca.pem"
    monkeypatch.setenv("SSL_CERT_FILE", str(missing))
    async with serve(ollama) as ollama_url:
        (sample,) = await monitor_samples(tmp_path, {"local": ollama_url})  # it died at start
    # The night's calls cannot be made with this trust either: the sample says why, on one line.
    assert not sample.reachable and sample.endpoint == ollama_url
    assert f"SSL_CERT_FILE={missing}" in sample.error and "\n" not in sample.error
    said = capfd.readouterr().err.splitlines()
    assert any(line.startswith("monitor: cannot load the CA") for line in said), said
