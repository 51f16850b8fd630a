"""Probe model servers over HTTP (httpx, async) → ``model_server_sampled`` events.

Ollama: ``/api/version``, ``/api/ps`` (resident models), ``/api/tags`` (available), ``/api/show``.
vLLM and other OpenAI-compatible servers: ``/v1/models`` and, where present, Prometheus ``/metrics``
(running, waiting, KV-cache use). An unreachable server is a reading (``reachable=False``), not an
error.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Iterable
from typing import Any

import httpx

from swarmlog.events import ModelServerSampled, ResidentModel

__all__ = [
    "base_url",
    "parse_prometheus",
    "probe_all",
    "probe_ollama",
    "probe_openai",
    "probe_server",
    "show_model",
]

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def base_url(endpoint: str) -> str:
    """Strip a trailing ``/v1`` (and slash) so server paths can be appended."""
    url = endpoint.rstrip("/")
    return url[:-3] if url.endswith("/v1") else url


def parse_prometheus(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Parse Prometheus text exposition into ``{series: [(labels, value), …]}``."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m is None:
            continue
        try:
            value = float(m.group(4))
        except ValueError:
            continue
        labels = dict(_LABEL.findall(m.group(3) or ""))
        out.setdefault(m.group(1), []).append((labels, value))
    return out


def _gauge(series: dict[str, list[tuple[dict[str, str], float]]], *names: str) -> float | None:
    for name in names:
        rows = series.get(name)
        if rows:
            values = [v for _, v in rows if not math.isnan(v)]
            if values:
                return sum(values)
    return None


def _unreachable(endpoint: str, api: str, exc: Exception) -> ModelServerSampled:
    detail = str(exc) or type(exc).__name__
    return ModelServerSampled(
        endpoint=endpoint, api=api, reachable=False, error=f"{type(exc).__name__}: {detail}"[:300]
    )


async def _get_json(client: httpx.AsyncClient, url: str) -> Any:
    resp = await client.get(url)
    resp.raise_for_status()
    return resp.json()


async def probe_ollama(client: httpx.AsyncClient, endpoint: str) -> ModelServerSampled:
    """Sample an Ollama server: version, resident (``/api/ps``) and available (``/api/tags``)."""
    base = base_url(endpoint)
    try:
        version = await _get_json(client, f"{base}/api/version")
        ps = await _get_json(client, f"{base}/api/ps")
        tags = await _get_json(client, f"{base}/api/tags")
    except (httpx.HTTPError, ValueError) as exc:
        return _unreachable(endpoint, "ollama", exc)
    resident = tuple(
        ResidentModel(
            name=str(m.get("name") or m.get("model") or ""),
            size=int(m.get("size") or 0),
            size_vram=int(m.get("size_vram") or 0),
            expires_at=str(m.get("expires_at") or ""),
            context_length=int(m.get("context_length") or 0),
        )
        for m in (ps.get("models") or [])
    )
    available = tuple(str(m.get("name") or m.get("model")) for m in (tags.get("models") or []))
    return ModelServerSampled(
        endpoint=endpoint,
        api="ollama",
        version=str(version.get("version", "")),
        available=available,
        resident=resident,
    )


async def show_model(client: httpx.AsyncClient, endpoint: str, model: str) -> dict[str, Any]:
    """Return Ollama's ``/api/show`` details for a model (layer counts live in ``model_info``)."""
    resp = await client.post(f"{base_url(endpoint)}/api/show", json={"model": model})
    resp.raise_for_status()
    data: dict[str, Any] = resp.json()
    return data


async def probe_openai(client: httpx.AsyncClient, endpoint: str) -> ModelServerSampled:
    """Sample an OpenAI-compatible server: ``/v1/models``, plus vLLM's ``/metrics`` when served."""
    base = base_url(endpoint)
    try:
        models = await _get_json(client, f"{base}/v1/models")
    except (httpx.HTTPError, ValueError) as exc:
        return _unreachable(endpoint, "openai", exc)
    available = tuple(str(m.get("id")) for m in (models.get("data") or []))
    running = waiting = None
    kv = None
    try:
        resp = await client.get(f"{base}/metrics")
        if resp.status_code == 200:
            series = parse_prometheus(resp.text)
            r = _gauge(series, "vllm:num_requests_running")
            w = _gauge(series, "vllm:num_requests_waiting")
            running = None if r is None else int(r)
            waiting = None if w is None else int(w)
            kv = _gauge(series, "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
    except httpx.HTTPError:
        pass  # /metrics is optional: llama.cpp and LM Studio do not serve it
    return ModelServerSampled(
        endpoint=endpoint,
        api="openai",
        available=available,
        resident=tuple(ResidentModel(name=a) for a in available),
        running=running,
        waiting=waiting,
        kv_cache_usage=kv,
    )


async def probe_server(client: httpx.AsyncClient, endpoint: str, api: str) -> ModelServerSampled:
    """Sample one server with the probe its ``api`` calls for."""
    if api == "ollama":
        return await probe_ollama(client, endpoint)
    if api == "openai":
        return await probe_openai(client, endpoint)
    return ModelServerSampled(endpoint=endpoint, api=api, error=f"no probe for api {api!r}")


async def probe_all(
    client: httpx.AsyncClient, servers: Iterable[tuple[str, str]]
) -> list[ModelServerSampled]:
    """Sample each distinct ``(endpoint, api)`` concurrently, in a stable order."""
    unique = sorted(set(servers))
    return list(await asyncio.gather(*(probe_server(client, e, a) for e, a in unique)))
