"""Detect model servers and hardware, and write a commented ``swarmlog.toml`` from what was found.

Detection (I/O) asks Ollama for its models (``/api/tags``), what is loaded (``/api/ps``) and each
model's shape (``/api/show``), asks OpenAI-compatible servers named by the operator for
``/v1/models``, and samples GPUs and RAM. Everything it cannot reach is a line in
``Detection.missing``, never an error. ``render_config`` is pure: the same detection always gives
the same text, and that text loads with ``load_config`` and routes.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import httpx
import msgspec

from swarmlog.config import DEFAULT_AGENTS
from swarmlog.defaults import DEFAULT_OLLAMA_URL, DETECT_TIMEOUT_S
from swarmlog.escalation.settings import DEFAULT_ESCALATION
from swarmlog.events import HardwareSampled, ModelServerSampled
from swarmlog.hardware import KV_BYTES_PER_TOKEN, Probe
from swarmlog.runtime.calls import endpoint_client, tls_verify
from swarmlog.servers import (
    base_url,
    get_json,
    json_type,
    one_line,
    probe_ollama,
    probe_openai,
    reply_count,
    reply_items,
    reply_name,
    show_model,
)

__all__ = [
    "DEEP_CAPABILITIES",
    "DEFAULT_OLLAMA_URL",
    "DETECT_TIMEOUT_S",
    "FAST_CAPABILITIES",
    "Detection",
    "ProbeClients",
    "ServerModel",
    "ServerSeen",
    "adetect",
    "detect",
    "render_config",
    "why_unreachable",
]

# Seeds/000: syntax-level work to fast small models, deep work to large ones.
FAST_CAPABILITIES = ("syntax", "format", "lint", "typecheck")
DEEP_CAPABILITIES = ("architecture", "refactor", "security", "design")
# Models below this many billion parameters are the fast tier.
_FAST_BELOW_B = 10.0
# The seed's recommendations (seeds/001 §1, §7, §9).
_SEED_PARALLEL = 2
_MAX_PARALLEL = 4
_KEEP_ALIVE = "60m"
_CONTEXT = 8192
_VRAM_HEADROOM = 0.9  # leave 10% of VRAM for the driver and fragmentation
_DIRECTOR_MODEL = "claude-sonnet-4-5"
_DIRECTOR_ENDPOINT = "https://api.anthropic.com"
_PARAMS = re.compile(r"(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z])")


class ServerModel(msgspec.Struct, frozen=True, kw_only=True):
    """One model a server offers, with what detection learned about it."""

    name: str
    size: int = 0  # bytes of weights (Ollama /api/tags)
    params_b: float | None = None  # billions of parameters, when known
    quantization: str = ""
    loaded: bool = False
    size_vram: int = 0
    context_length: int = 0  # num_ctx it is loaded with, or its default
    max_context: int = 0  # the context it was trained for
    kv_bytes_per_token: int | None = None  # f16 KV cache per token of context per slot
    embedding: bool = False  # embedding-only models cannot chat


class ServerSeen(msgspec.Struct, frozen=True, kw_only=True):
    """A model server that answered."""

    endpoint: str
    api: str  # "ollama" or "openai"
    version: str = ""
    models: tuple[ServerModel, ...] = ()


class Detection(msgspec.Struct, frozen=True, kw_only=True):
    """What ``swarmlog init`` found, and what it could not detect (one line each)."""

    servers: tuple[ServerSeen, ...] = ()
    hardware: HardwareSampled | None = None
    missing: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


# Detection (I/O)


class ProbeClients:
    """The HTTP clients that probe model servers, one per endpoint, each made by the night's own
    ``swarmlog.runtime.calls.endpoint_client``, so ``init``, ``doctor`` and the night agree.

    A local or private address is reached directly and any other host through the environment's
    proxy; TLS trust comes from ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``. When those cannot be read,
    the constructor raises the calls' one-line ``ConfigError`` before anything is probed.
    """

    def __init__(self, timeout_s: float) -> None:
        tls_verify()  # refuse an unreadable SSL_CERT_FILE / SSL_CERT_DIR up front
        self._timeout_s = timeout_s
        self._clients: dict[str, httpx.AsyncClient] = {}

    def __call__(self, endpoint: str) -> httpx.AsyncClient:
        """The client for ``endpoint``."""
        if endpoint not in self._clients:
            self._clients[endpoint] = endpoint_client(endpoint, timeout_s=self._timeout_s)
        return self._clients[endpoint]

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


def why_unreachable(error: str, timeout_s: float) -> str:
    """Say in a few words why a server did not answer (from a probe's error text)."""
    low = error.lower()
    if "refused" in low or "all connection attempts failed" in low:
        return "connection refused"
    if "timeout" in low or "timed out" in low:
        return f"no answer within {timeout_s:g}s"
    if "certificate_verify_failed" in low:
        return "its TLS certificate is not trusted (name its CA in SSL_CERT_FILE)"
    return error or "unreachable"


def _params_b(name: str, details: dict[str, Any], size: int) -> float | None:
    for text in (str(details.get("parameter_size") or ""), name):
        m = _PARAMS.search(text)
        if m:
            return float(m.group(1))
    if size > 0:  # a 4-bit quantised file holds about 0.56 bytes per parameter
        return round(size / 0.5625e9, 1)
    return None


_MAX_COUNT = 2**53  # a byte or token count above this is not a reading (and overflows floats)


def _int(value: Any) -> int:
    """A count from a server's reply: a finite number (or its text) in 0 .. 2**53, else 0."""
    n = reply_count(value)
    return n if n < _MAX_COUNT else 0


def _shape(show: dict[str, Any]) -> tuple[int | None, int, int]:
    """Return (KV bytes per token per slot, trained context, num_ctx from its parameters)."""
    info = show.get("model_info")
    if not isinstance(info, dict):
        info = {}
    arch = str(info.get("general.architecture") or "")

    def get(key: str) -> int:
        return _int(info.get(f"{arch}.{key}"))

    layers, kv_heads = get("block_count"), get("attention.head_count_kv")
    head_dim = get("attention.key_length")
    if not head_dim and get("attention.head_count"):
        head_dim = get("embedding_length") // get("attention.head_count")
    kv = 2 * layers * kv_heads * head_dim * 2 if layers and kv_heads and head_dim else None
    num_ctx = 0
    for line in str(show.get("parameters") or "").splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == "num_ctx":
            num_ctx = _int(words[1])
    return kv, get("context_length"), num_ctx


def _failed(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return (
            f"{exc.request.method} {exc.request.url.path} answered HTTP {exc.response.status_code}"
        )
    return one_line(str(exc) or type(exc).__name__)[:200]


def _odd(value: Any) -> str:
    """A value from a reply, short enough for a one-line message."""
    return one_line(repr(value))[:40]


async def _tags(
    client: httpx.AsyncClient, url: str, sample: ModelServerSampled
) -> tuple[list[dict[str, Any]], list[str]]:
    """The named entries of ``/api/tags`` (through the probes' guarded request, under their
    overall deadline), and what could not be read of it, one line each. When it fails, the
    names the probe listed, without sizes or details."""
    host = _host(url)
    try:
        data = await get_json(client, f"{base_url(url)}/api/tags")
        entries = reply_items(data, "models", "/api/tags")
    except (httpx.HTTPError, ValueError) as exc:
        why = f"sizes and details of the models on the Ollama at {host} ({_failed(exc)})"
        return [{"name": n} for n in sample.available], [why]
    named = [m for m in entries if reply_name(m, "name", "model")]
    odd = len(data.get("models") or []) - len(named)
    if not odd:
        return named, []
    what = "entry" if odd == 1 else "entries"
    return named, [f"{odd} {what} of /api/tags on {host} that name no model (skipped)"]


async def _ollama(
    client: httpx.AsyncClient, url: str, timeout_s: float
) -> tuple[ServerSeen | None, list[str]]:
    sample: ModelServerSampled = await probe_ollama(client, url)
    if not sample.reachable:
        return None, [f"no Ollama at {_host(url)}: {why_unreachable(sample.error, timeout_s)}"]
    tags, missing = await _tags(client, url, sample)
    resident = {r.name: r for r in sample.resident}
    models = []
    for tag in tags:
        name = reply_name(tag, "name", "model")
        details = tag.get("details")
        if not isinstance(details, dict):
            if details is not None:
                missing.append(
                    f"details of {name} (/api/tags gave {json_type(details)}, not an object)"
                )
            details = {}
        caps = tag.get("capabilities")
        family = str(details.get("family") or "")
        is_embedding = (isinstance(caps, list) and "completion" not in caps) or (
            caps is None and ("embed" in name or family in ("bert", "nomic-bert"))
        )
        try:
            show = await show_model(client, url, name)
        except (httpx.HTTPError, ValueError) as exc:
            show = {}
            missing.append(f"shape of {name} (/api/show failed: {_failed(exc)})")
        info = show.get("model_info")
        if info is not None and not isinstance(info, dict):
            missing.append(
                f"shape of {name} (/api/show gave model_info as {json_type(info)}, not an object)"
            )
        kv, max_ctx, num_ctx = _shape(show)
        size = _int(tag.get("size"))
        if not size and tag.get("size") not in (None, 0):
            missing.append(f"size of {name} (/api/tags gave {_odd(tag.get('size'))})")
        r = resident.get(name)
        models.append(
            ServerModel(
                name=name,
                size=size,
                params_b=_params_b(name, details, size),
                quantization=one_line(str(details.get("quantization_level") or "")),
                loaded=r is not None,
                size_vram=r.size_vram if r is not None else 0,
                context_length=(r.context_length if r is not None else 0) or num_ctx,
                max_context=max_ctx,
                kv_bytes_per_token=kv,
                embedding=is_embedding,
            )
        )
    if not models:
        missing.append(f"models on the Ollama at {_host(url)}: none pulled (try 'ollama pull')")
    seen = ServerSeen(endpoint=url, api="ollama", version=sample.version, models=tuple(models))
    return seen, missing


async def _openai(
    client: httpx.AsyncClient, url: str, timeout_s: float
) -> tuple[ServerSeen | None, list[str]]:
    sample = await probe_openai(client, url)
    if not sample.reachable:
        why = why_unreachable(sample.error, timeout_s)
        return None, [f"no OpenAI-compatible server at {_host(url)}: {why}"]
    endpoint = base_url(url) + "/v1"
    models = tuple(
        ServerModel(name=name, params_b=_params_b(name, {}, 0)) for name in sample.available
    )
    missing = [] if models else [f"models on {_host(url)}: /v1/models lists none"]
    return ServerSeen(endpoint=endpoint, api="openai", models=models), missing


async def adetect(
    clients: ProbeClients,
    *,
    ollama_url: str | None = DEFAULT_OLLAMA_URL,
    openai_urls: Sequence[str] = (),
    probe: Probe | None = None,
    timeout_s: float = DETECT_TIMEOUT_S,
) -> Detection:
    """Detect servers concurrently (``ollama_url=None`` skips Ollama) and sample the hardware."""
    jobs = []
    if ollama_url:
        jobs.append(_ollama(clients(ollama_url), ollama_url, timeout_s))
    jobs.extend(_openai(clients(u), u, timeout_s) for u in openai_urls)
    results = await asyncio.gather(*jobs)
    servers = tuple(s for s, _ in results if s is not None)
    missing = [m for _, ms in results for m in ms]
    hardware = await asyncio.to_thread((probe or Probe()).sample)
    if not hardware.gpus:
        why = hardware.nvml_error or "the driver reports none"
        missing.append(f"GPUs: {why}; slots follow the seed's default of {_SEED_PARALLEL}")
    return Detection(
        servers=servers, hardware=hardware, missing=tuple(one_line(m) for m in missing)
    )


def detect(
    *,
    ollama_url: str | None = DEFAULT_OLLAMA_URL,
    openai_urls: Sequence[str] = (),
    probe: Probe | None = None,
    timeout_s: float = DETECT_TIMEOUT_S,
) -> Detection:
    """Run ``adetect`` with its own short-timeout HTTP clients.

    Raises ``ConfigError`` when ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` cannot be read: the night's
    calls would fail the same way, and a config written without the servers would be kept.
    """

    async def go() -> Detection:
        async with ProbeClients(timeout_s) as clients:
            return await adetect(
                clients,
                ollama_url=ollama_url,
                openai_urls=openai_urls,
                probe=probe,
                timeout_s=timeout_s,
            )

    return asyncio.run(go())


# Generation (pure)


class _Choice(msgspec.Struct, frozen=True, kw_only=True):
    profile: str
    server: ServerSeen
    model: ServerModel
    tier: str  # fast, deep or "" (size unknown)
    capabilities: tuple[str, ...]


def _q(value: str) -> str:
    """Quote a TOML basic string (JSON escapes are valid TOML escapes)."""
    return json.dumps(value, ensure_ascii=False)


def _list(values: Iterable[str]) -> str:
    return "[" + ", ".join(_q(v) for v in values) + "]"


def _profile_name(model: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", model).strip("-").lower() or "model"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def _tier(m: ServerModel) -> str:
    if m.params_b is None:
        return ""
    return "fast" if m.params_b < _FAST_BELOW_B else "deep"


def _choose(det: Detection) -> tuple[list[_Choice], list[tuple[ServerSeen, ServerModel]]]:
    """Pick the profiles to enable: per server, a fast and a deep model; the rest stay comments."""
    chosen: list[_Choice] = []
    rest: list[tuple[ServerSeen, ServerModel]] = []
    taken: set[str] = {"director"}
    for server in det.servers:
        usable = [m for m in server.models if not m.embedding]
        picks: list[ServerModel] = []
        for tier in ("fast", "deep"):
            group = [m for m in usable if _tier(m) == tier]
            # Loaded first (no cold load tonight), then the largest of the tier.
            group.sort(key=lambda m: (not m.loaded, -(m.params_b or 0.0), m.name))
            if group:
                picks.append(group[0])
        if not picks:
            picks = [m for m in usable if not _tier(m)][:1]
        for m in picks:
            tier = _tier(m)
            caps = {"fast": FAST_CAPABILITIES, "deep": DEEP_CAPABILITIES}.get(
                tier, FAST_CAPABILITIES + DEEP_CAPABILITIES
            )
            chosen.append(
                _Choice(
                    profile=_profile_name(m.name, taken),
                    server=server,
                    model=m,
                    tier=tier,
                    capabilities=caps,
                )
            )
        rest.extend((server, m) for m in usable if m not in picks)
    tiers = {c.tier for c in chosen}
    if chosen and not {"fast", "deep"} <= tiers:
        # One kind of model only: it must take every kind of task, or some would never route.
        chosen = [
            msgspec.structs.replace(c, capabilities=FAST_CAPABILITIES + DEEP_CAPABILITIES)
            for c in chosen
        ]
    return chosen, rest


def _kv_per_slot(m: ServerModel, ctx: int) -> int:
    return (m.kv_bytes_per_token or KV_BYTES_PER_TOKEN) * ctx


def _context(m: ServerModel) -> int:
    ctx = m.context_length or _CONTEXT
    return min(ctx, m.max_context) if m.max_context else ctx


def _slots(det: Detection, choices: Sequence[_Choice]) -> tuple[int, str]:
    """Return the parallel slots for one server's models, and why."""
    gpus = det.hardware.gpus if det.hardware else ()
    total = sum(g.mem_total for g in gpus)
    if not total:
        return _SEED_PARALLEL, "no GPU detected: the seed's conservative default"
    weights = sum(c.model.size_vram or c.model.size for c in choices)
    per_slot = sum(_kv_per_slot(c.model, _context(c.model)) for c in choices)
    budget = total * _VRAM_HEADROOM - weights
    fit = int(budget // per_slot) if per_slot else _MAX_PARALLEL
    slots = max(1, min(_MAX_PARALLEL, fit))
    why = (
        f"{total / 1e9:.0f} GB VRAM - {weights / 1e9:.1f} GB weights leaves room for {max(fit, 0)} "
        f"KV-cache slot(s) of {per_slot / 1e9:.2f} GB; capped at {_MAX_PARALLEL}"
    )
    return slots, why


def _vram_gb(m: ServerModel, ctx: int) -> float | None:
    weights = m.size_vram or m.size
    if not weights:
        return None
    return math.ceil((weights + _kv_per_slot(m, ctx)) / 1e8) / 10


def _header(det: Detection) -> list[str]:
    out = [
        "# swarmlog.toml: models, agents, limits, escalation thresholds and alert channels.",
        "# Written by 'swarmlog init'. Check it with 'swarmlog config check' and, before the",
        "# night, 'swarmlog doctor'. Every key is described in README.md.",
        "#",
    ]
    for s in det.servers:
        loaded = sum(m.loaded for m in s.models)
        what = "Ollama" if s.api == "ollama" else "OpenAI-compatible server"
        ver = f" {one_line(s.version)}" if s.version else ""
        out.append(
            f"# Detected: {what}{ver} at {s.endpoint}: {len(s.models)} model(s), {loaded} loaded"
        )
    hw = det.hardware
    if hw is not None:
        for g in hw.gpus:
            out.append(f"# Detected: GPU {g.index} {g.name}, {g.mem_total / 1e9:.1f} GB VRAM")
        if hw.ram_total:
            out.append(f"# Detected: {hw.ram_total / 1e9:.1f} GB RAM, {hw.cpu_count} CPUs")
    for line in det.missing:
        out.append(f"# Not detected: {one_line(line)}")
    for line in det.notes:
        out.append(f"# Note: {one_line(line)}")
    return out


def _model_table(c: _Choice, slots: int, why: str) -> list[str]:
    m = c.model
    ctx = _context(m)
    lines = [f"[models.{c.profile}]"]
    size = f"{m.params_b:g}B" if m.params_b else "size unknown"
    state = "loaded now" if m.loaded else "not loaded now"
    quant = f", {m.quantization}" if m.quantization else ""
    lines.append(f"# {one_line(m.name)}: {size}{quant}, {state}")
    lines.append(f"endpoint = {_q(c.server.endpoint)}")
    lines.append(f"api = {_q(c.server.api)}")
    lines.append(f"model = {_q(m.name)}")
    if c.tier:
        lines.append(f"tier = {_q(c.tier)}")
    lines.append(f"capabilities = {_list(c.capabilities)}")
    if c.server.api == "ollama":
        lines.append(f"# {why}. Start Ollama with OLLAMA_NUM_PARALLEL={slots} to match.")
    else:
        lines.append(
            "# This server batches many sequences; raise to its --max-num-seqs if you like."
        )
    lines.append(f"parallel = {slots}")
    lines.append(f"context_length = {ctx}")
    vram = _vram_gb(m, ctx)
    if vram is not None:
        lines.append(f"vram_gb = {vram:g}  # weights + one slot of KV cache")
    lines.append(f"keep_alive = {_q(_KEEP_ALIVE)}  # the seed: stay loaded all night")
    return lines


def _commented_model(server: ServerSeen, m: ServerModel, taken: set[str]) -> list[str]:
    name = _profile_name(m.name, taken)
    size = f" ({m.params_b:g}B)" if m.params_b else ""
    caps = {"fast": FAST_CAPABILITIES, "deep": DEEP_CAPABILITIES}.get(
        _tier(m), FAST_CAPABILITIES + DEEP_CAPABILITIES
    )
    return [
        f"# Also on {server.endpoint}{size}; uncomment to let the router use it:",
        f"# [models.{name}]",
        f"# endpoint = {_q(server.endpoint)}",
        f"# api = {_q(server.api)}",
        f"# model = {_q(m.name)}",
        f"# capabilities = {_list(caps)}",
        f"# keep_alive = {_q(_KEEP_ALIVE)}",
    ]


def _fallback_models() -> list[str]:
    return [
        "# No model server was detected: these two profiles follow the seed guide. Pull the",
        "# models ('ollama pull qwen2.5:1.5b', 'ollama pull qwen3:32b') or point them elsewhere.",
        "[models.fast]",
        f"endpoint = {_q(DEFAULT_OLLAMA_URL)}",
        'api = "ollama"',
        'model = "qwen2.5:1.5b"',
        'tier = "fast"',
        f"capabilities = {_list(FAST_CAPABILITIES)}",
        f"parallel = {_SEED_PARALLEL}  # must match OLLAMA_NUM_PARALLEL",
        f"context_length = {_CONTEXT}",
        f"keep_alive = {_q(_KEEP_ALIVE)}",
        "",
        "[models.deep]",
        f"endpoint = {_q(DEFAULT_OLLAMA_URL)}",
        'api = "ollama"',
        'model = "qwen3:32b"',
        'tier = "deep"',
        f"capabilities = {_list(DEEP_CAPABILITIES)}",
        f"parallel = {_SEED_PARALLEL}  # must match OLLAMA_NUM_PARALLEL",
        f"context_length = {_CONTEXT}",
        "vram_gb = 20  # ~19 GB of 4-bit weights + KV cache (seeds/001)",
        f"keep_alive = {_q(_KEEP_ALIVE)}",
    ]


def _director() -> list[str]:
    return [
        "# The Director runs on Anthropic's API; export ANTHROPIC_API_KEY before the run (it is",
        "# never written to the log or to any file).",
        "[models.director]",
        f"endpoint = {_q(_DIRECTOR_ENDPOINT)}",
        'api = "anthropic"',
        f"model = {_q(_DIRECTOR_MODEL)}",
        'tier = "deep"',
        'capabilities = ["director"]',
        "parallel = 2",
        "context_length = 200000",
        "cost_per_1k_tokens = { input = 0.003, output = 0.015 }",
    ]


def _agents() -> list[str]:
    out = [
        "# The seed's agent table (seeds/001 §7). 'model = \"NAME\"' pins a role to a profile;",
        "# otherwise the router picks by capability, latency and load. 'count' runs more workers.",
    ]
    for role, d in DEFAULT_AGENTS.items():
        out.append(f"[agents.{role}]")
        if role == "director":
            out.append('capabilities = ["director"]')
        out.append(f"timeout_s = {d['timeout_s']}")
        out.append(f"priority = {_q(d['priority'])}")
        out.append(f"tools_allow = {_list(d['tools_allow'])}")
        out.append("")
    return out[:-1]


_ESCALATION_NOTES = {
    "stuck_calls": "model calls by one agent without finishing a task (level 1)",
    "same_error_repeats": "the same error this many times (level 1)",
    "memory_percent": "RAM use above this (level 3)",
    "queue_depth": "queued calls above this (level 3)",
    "call_latency_s": "one call slower than this (level 3)",
    "vram_percent": "VRAM use above this (level 3)",
    "offload": "a loaded model spilling to the CPU (level 3)",
    "critical_bugs": "critical bugs in one review above this (level 2)",
    "architect_flaw": "the Architect flags a fundamental design flaw (level 2)",
    "emergency_messages": "an agent's EMERGENCY message to the Director (level 2)",
    "conflict_disagreement": "trust-weighted minority share above this (level 2)",
    "task_attempts": "attempts at one task above this (level 2, then 3)",
    "phase_overrun_factor": "a phase longer than this times its expected duration",
    "trust_below": "an agent's trust below this (of 10)",
    "default_trust": "every agent's trust at the start (of 10)",
    "alert_file_min_level": "write alerts/ALERT-*.md from this level",
    "recovery_attempts": "failed recoveries before an issue rises one level",
}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _q(value)
    return repr(value)


def _escalation() -> list[str]:
    out = ["# Detector thresholds: the seed's defaults (seeds/001 §3-4)."]
    out.append("[escalation]")
    fields = msgspec.structs.asdict(DEFAULT_ESCALATION)
    budget = fields.pop("budget")
    for key, value in fields.items():
        note = _ESCALATION_NOTES.get(key, "")
        out.append(f"{key} = {_toml_value(value)}" + (f"  # {note}" if note else ""))
    out.append("")
    out.append("# The night's budget; 0 means no limit.")
    out.append("[escalation.budget]")
    for key, value in msgspec.structs.asdict(budget).items():
        out.append(f"{key} = {_toml_value(value)}")
    return out


def render_config(det: Detection) -> str:
    """Return the commented ``swarmlog.toml`` text for what was detected."""
    chosen, rest = _choose(det)
    lines = _header(det)
    lines += [
        "",
        "# [limits]: the seed runs 2 calls at once, matching OLLAMA_NUM_PARALLEL=2.",
        "[limits]",
        "max_concurrent = 2",
        "queue_depth = 100  # queued calls beyond this push back",
        "lease_s = 300  # a task claim expires after this without a heartbeat",
        "heartbeat_s = 30",
        "max_attempts = 3",
        "",
        "# Model profiles. The router sends syntax-level tasks to small fast models and deep",
        "# work (architecture, refactor, security) to large ones, by these capability tags.",
    ]
    if chosen:
        by_server: dict[str, list[_Choice]] = {}
        for c in chosen:
            by_server.setdefault(c.server.endpoint, []).append(c)
        for group in by_server.values():
            slots, why = _slots(det, group) if group[0].server.api == "ollama" else (4, "")
            for c in group:
                lines += ["", *_model_table(c, slots, why)]
        taken = {c.profile for c in chosen} | {"director"}
        for server, m in rest:
            lines += ["", *_commented_model(server, m, taken)]
    else:
        lines += ["", *_fallback_models()]
    lines += ["", *_director(), "", *_agents(), "", *_escalation()]
    lines += [
        "",
        "# Alert channels: alert files are always written; webhooks are optional.",
        "# [alerts]",
        "# [[alerts.webhooks]]",
        '# name = "phone"',
        '# url = "https://ntfy.sh/your-secret-topic"',
        '# kind = "ntfy"  # json, ntfy or slack',
        "# min_level = 3",
        "",
    ]
    return "\n".join(lines)
