"""What a simulated server serves: model specs, injected faults, and the default reply."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

import msgspec

__all__ = [
    "NIGHT_IN_A_MINUTE",
    "Faults",
    "ReplyFn",
    "SimModel",
    "default_reply",
    "parse_keep_alive",
    "sim_model",
    "token_count",
]

# time_scale that plays an eight-hour night in about one minute of real time.
NIGHT_IN_A_MINUTE = 60.0 / (8 * 3600)

ReplyFn = Callable[[str, list[dict[str, Any]], dict[str, Any]], str]
"""``reply_fn(model, messages, options) -> reply text``; ``options`` carries ``format`` too."""


class SimModel(msgspec.Struct, frozen=True):
    """A model the simulated server can load.

    ``size_bytes`` is the weights file (read from disk on load, held in VRAM); ``parallel`` its
    slots (``OLLAMA_NUM_PARALLEL``); ``context_length`` the ``num_ctx`` it loads with when a
    request names none; ``keep_alive_s`` its idle time before unload (negative: forever).
    """

    name: str
    params_b: float
    size_bytes: int
    parallel: int = 1
    context_length: int = 8192
    keep_alive_s: float = 300.0
    quant_bits: int = 4


def sim_model(
    name: str,
    params_b: float,
    *,
    quant_bits: int = 4,
    parallel: int = 1,
    context_length: int = 8192,
    keep_alive_s: float = 300.0,
) -> SimModel:
    """Build a ``SimModel`` whose file size follows from its parameters and quantisation."""
    # Quantised files carry scales and a few full-precision tensors: about half a bit more.
    bits = quant_bits + 0.5 if quant_bits < 16 else quant_bits
    size = int(params_b * 1e9 * bits / 8)
    return SimModel(name, params_b, size, parallel, context_length, keep_alive_s, quant_bits)


class Faults(msgspec.Struct, frozen=True, kw_only=True):
    """Faults injected into one model's requests, drawn deterministically from the seed.

    Each request draws once: ``error_rate`` answers 500, ``busy_rate`` answers 503 "server busy",
    ``hang_rate`` accepts and never answers, ``drop_rate`` drops the connection after the first
    chunk, ``slow_rate`` runs ``slow_factor`` times slower. ``fail_first`` makes the first N
    requests to the model answer 500 whatever the draw. ``retry_after_s`` adds a ``Retry-After``
    header to injected 503s.
    """

    error_rate: float = 0.0
    busy_rate: float = 0.0
    hang_rate: float = 0.0
    drop_rate: float = 0.0
    slow_rate: float = 0.0
    slow_factor: float = 5.0
    fail_first: int = 0
    retry_after_s: float | None = None

    def pick(self, draw: float) -> str:
        """Map a uniform draw in [0, 1) to a fault kind (``error``, ``busy``, …) or ``""``."""
        edge = 0.0
        for kind, rate in (
            ("error", self.error_rate),
            ("busy", self.busy_rate),
            ("hang", self.hang_rate),
            ("drop", self.drop_rate),
            ("slow", self.slow_rate),
        ):
            edge += rate
            if draw < edge:
                return kind
        return ""


def token_count(text: str) -> int:
    """Approximate a token count: one token per four characters."""
    return math.ceil(len(text) / 4)


def default_reply(model: str, messages: list[dict[str, Any]], options: dict[str, Any]) -> str:
    """Answer with a deterministic JSON status that echoes the last user message."""
    last = next(
        (str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), ""
    )
    summary = " ".join(last.split())[:120]
    return json.dumps({"status": "done", "summary": f"{model} handled: {summary}"})


_DURATION = re.compile(r"(-?\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_keep_alive(value: object) -> float | None:
    """Parse Ollama's ``keep_alive`` (seconds, or a Go duration like ``5m``); negative → inf.

    Returns ``None`` when absent or unparseable, meaning "use the model's default".
    """
    seconds: float | None = None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text.replace("+", ""):
                return None
            seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
    if seconds is None:
        return None
    return math.inf if seconds < 0 else seconds
