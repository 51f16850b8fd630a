"""Serving speed of a simulated model, from the H100 measurements shipped with the package.

``step_times_h100.json`` holds prefill throughput and decode step times of Qwen2.5-shaped 1.5B, 7B
and 32B models for 1 to 32 concurrent sequences. A simulated model takes the figures of the
measured model nearest in parameter count; decode step time is interpolated between the measured
batch sizes (so aggregate tokens/s grows with busy slots as measured) and grows in proportion
beyond 32.
"""

from __future__ import annotations

import functools
import itertools
import math
from importlib import resources

import msgspec

__all__ = [
    "KvShape",
    "Measured",
    "decode_step_s",
    "kv_cache_bytes",
    "kv_shape",
    "measured_for",
    "prefill_s",
]


class _Prefill(msgspec.Struct):
    ms: float
    tok_s: float


class _Decode(msgspec.Struct):
    step_ms: float
    agg_tok_s: float
    per_seq_tok_s: float


class _Model(msgspec.Struct):
    params_b: float
    weights_gib: float
    prefill: dict[str, _Prefill]
    decode: dict[str, _Decode]


class _Fixture(msgspec.Struct):
    device: str
    models: dict[str, _Model]


class Measured(msgspec.Struct, frozen=True):
    """One measured model: prefill tok/s by prompt length, decode step seconds by batch size."""

    name: str
    params_b: float
    prefill_tok_s: tuple[tuple[int, float], ...]
    decode_step_s: tuple[tuple[int, float], ...]


class KvShape(msgspec.Struct, frozen=True):
    """The attention shape that sizes a model's KV cache."""

    layers: int
    kv_heads: int
    head_dim: int


# Qwen2.5 / Qwen3 shapes by parameter count (billions), for the KV-cache estimate.
_SHAPES: tuple[tuple[float, KvShape], ...] = (
    (0.5, KvShape(24, 2, 64)),
    (1.5, KvShape(28, 2, 128)),
    (3.0, KvShape(36, 2, 128)),
    (7.6, KvShape(28, 4, 128)),
    (14.8, KvShape(48, 8, 128)),
    (32.8, KvShape(64, 8, 128)),
    (72.7, KvShape(80, 8, 128)),
)


@functools.cache
def _measured() -> tuple[Measured, ...]:
    raw = resources.files("swarmlog.sim").joinpath("step_times_h100.json").read_bytes()
    fixture = msgspec.json.decode(raw, type=_Fixture)
    out = []
    for name, model in fixture.models.items():
        prefill = tuple(sorted((int(k), v.tok_s) for k, v in model.prefill.items()))
        decode = tuple(sorted((int(k), v.step_ms / 1000.0) for k, v in model.decode.items()))
        out.append(Measured(name, model.params_b, prefill, decode))
    return tuple(sorted(out, key=lambda m: m.params_b))


def measured_for(params_b: float) -> Measured:
    """Return the measured model nearest to ``params_b`` (compared on a log scale)."""
    return min(_measured(), key=lambda m: abs(math.log(m.params_b) - math.log(max(params_b, 1e-3))))


def _interpolate(points: tuple[tuple[int, float], ...], x: float) -> float:
    """Interpolate linearly in log2(x) between measured points; clamp below the first."""
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x <= x1:
            t = (math.log2(x) - math.log2(x0)) / (math.log2(x1) - math.log2(x0))
            return y0 + t * (y1 - y0)
    return points[-1][1]


def decode_step_s(params_b: float, busy: int) -> float:
    """Return the seconds one decode step takes with ``busy`` sequences sharing it."""
    points = measured_for(params_b).decode_step_s
    top_batch, top_step = points[-1]
    if busy > top_batch:  # past the measured range the batch is compute-bound
        return top_step * busy / top_batch
    return _interpolate(points, max(1, busy))


def prefill_s(params_b: float, prompt_tokens: int) -> float:
    """Return the seconds prefilling ``prompt_tokens`` takes."""
    if prompt_tokens <= 0:
        return 0.0
    tok_s = _interpolate(measured_for(params_b).prefill_tok_s, prompt_tokens)
    return prompt_tokens / tok_s


def kv_shape(params_b: float) -> KvShape:
    """Return the attention shape of the known architecture nearest to ``params_b``."""
    return min(_SHAPES, key=lambda s: abs(math.log(s[0]) - math.log(max(params_b, 1e-3))))[1]


def kv_cache_bytes(params_b: float, num_ctx: int, parallel: int, *, bytes_per: int = 2) -> int:
    """Estimate the KV cache as Ollama does: 2 * layers * kv_heads * head_dim * ctx * slots * 2."""
    s = kv_shape(params_b)
    return 2 * s.layers * s.kv_heads * s.head_dim * num_ctx * parallel * bytes_per
