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
    "BadReply",
    "base_url",
    "get_json",
    "json_type",
    "one_line",
    "parse_prometheus",
    "probe_all",
    "probe_ollama",
    "probe_openai",
    "probe_server",
    "reply_count",
    "reply_items",
    "reply_name",
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


def _gauge(
    series: dict[str, list[tuple[dict[str, str], float]]], *names: str, mean: bool = False
) -> float | None:
    """The first named series present, summed over its label sets (one per engine), or their
    mean for a per-engine fraction (``mean``)."""
    for name in names:
        rows = series.get(name)
        if rows:
            values = [v for _, v in rows if math.isfinite(v)]  # NaN, ±Inf are not a reading
            if values:
                return sum(values) / len(values) if mean else sum(values)
    return None


class BadReply(ValueError):
    """A server answered, but not with what its protocol promises (a reading, not a crash)."""


def one_line(text: str) -> str:
    return " ".join(text.split())


def _unreachable(endpoint: str, api: str, exc: Exception) -> ModelServerSampled:
    if isinstance(exc, httpx.HTTPStatusError):
        req = exc.request
        detail = f"{req.method} {req.url.path} answered HTTP {exc.response.status_code}"
    else:
        detail = str(exc) or type(exc).__name__
    return ModelServerSampled(
        endpoint=endpoint,
        api=api,
        reachable=False,
        error=one_line(f"{type(exc).__name__}: {detail}")[:300],
    )


def json_type(data: Any) -> str:
    if data is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(data), "a number"
    )


def _deadline_s(client: httpx.AsyncClient) -> float:
    """How long one probe request may take in all: twice the client's longest phase timeout.

    httpx bounds each read, not the whole answer, so a server that drips a byte at a time
    would otherwise hold a probe (and the monitor's sampling) forever.
    """
    t = client.timeout
    phases = [x for x in (t.connect, t.read, t.write, t.pool) if x]
    return 2.0 * max(phases) if phases else 60.0


async def _request(client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> httpx.Response:
    """One request under the probe's overall deadline (``httpx.ReadTimeout`` past it)."""
    deadline = _deadline_s(client)
    try:
        async with asyncio.timeout(deadline):
            return await client.request(method, url, **kw)
    except TimeoutError:
        path = httpx.URL(url).path
        raise httpx.ReadTimeout(
            f"{method} {path}: no complete answer within {deadline:g}s"
        ) from None


async def get_json(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    resp = await _request(client, "GET", url)
    resp.raise_for_status()
    return _json_object(resp, f"GET {httpx.URL(url).path}")


def _json_object(resp: httpx.Response, what: str) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise BadReply(f"{what} answered malformed JSON ({one_line(str(exc))})") from exc
    if not isinstance(data, dict):
        raise BadReply(f"{what} answered {json_type(data)}, not a JSON object")
    return data


def reply_items(data: dict[str, Any], key: str, path: str) -> list[dict[str, Any]]:
    """The objects listed under ``key`` (absent or null: none); entries that are not objects
    are skipped, a ``key`` that is not a list is a bad reply."""
    items = data.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        raise BadReply(f"GET {path} answered {key!r} as {json_type(items)}, not a list")
    return [m for m in items if isinstance(m, dict)]


def reply_count(value: Any) -> int:
    """A byte or token count from a reply: a finite number >= 0 (or its text), else 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return 0
    if isinstance(value, int | float) and math.isfinite(value) and value > 0:
        return int(value)
    return 0


def reply_name(m: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = m.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


async def probe_ollama(client: httpx.AsyncClient, endpoint: str) -> ModelServerSampled:
    """Sample an Ollama server: version, resident (``/api/ps``) and available (``/api/tags``)."""
    base = base_url(endpoint)
    try:
        version = await get_json(client, f"{base}/api/version")
        ps = reply_items(await get_json(client, f"{base}/api/ps"), "models", "/api/ps")
        tags = reply_items(await get_json(client, f"{base}/api/tags"), "models", "/api/tags")
    except (httpx.HTTPError, ValueError) as exc:
        return _unreachable(endpoint, "ollama", exc)
    resident = tuple(
        ResidentModel(
            name=reply_name(m, "name", "model"),
            size=reply_count(m.get("size")),
            size_vram=reply_count(m.get("size_vram")),
            expires_at=str(m.get("expires_at") or ""),
            context_length=reply_count(m.get("context_length")),
        )
        for m in ps
        if reply_name(m, "name", "model")
    )
    available = tuple(n for n in (reply_name(m, "name", "model") for m in tags) if n)
    return ModelServerSampled(
        endpoint=endpoint,
        api="ollama",
        version=str(version.get("version") or ""),
        available=available,
        resident=resident,
    )


async def show_model(client: httpx.AsyncClient, endpoint: str, model: str) -> dict[str, Any]:
    """Return Ollama's ``/api/show`` details for a model (layer counts live in ``model_info``).

    Raises ``httpx.HTTPError`` when the call fails and ``ValueError`` when the reply is not a
    JSON object.
    """
    resp = await _request(client, "POST", f"{base_url(endpoint)}/api/show", json={"model": model})
    resp.raise_for_status()
    return _json_object(resp, f"POST /api/show for {model}")


async def probe_openai(client: httpx.AsyncClient, endpoint: str) -> ModelServerSampled:
    """Sample an OpenAI-compatible server: ``/v1/models``, plus vLLM's ``/metrics`` when served."""
    base = base_url(endpoint)
    try:
        models = reply_items(await get_json(client, f"{base}/v1/models"), "data", "/v1/models")
    except (httpx.HTTPError, ValueError) as exc:
        return _unreachable(endpoint, "openai", exc)
    available = tuple(n for n in (reply_name(m, "id") for m in models) if n)
    running = waiting = None
    kv = None
    try:
        resp = await _request(client, "GET", f"{base}/metrics")
        if resp.status_code == 200:
            series = parse_prometheus(resp.text)
            r = _gauge(series, "vllm:num_requests_running")
            w = _gauge(series, "vllm:num_requests_waiting")
            running = None if r is None else int(r)
            waiting = None if w is None else int(w)
            kv = _gauge(series, "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", mean=True)
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
