"""Read figures out of the model-call statistics: percentiles and rates, deterministically."""

from __future__ import annotations

from swarmlog.state.model import ModelStats

__all__ = ["bucket_upper_ms", "percentile_ms", "tokens_per_s"]


def bucket_upper_ms(i: int) -> float:
    """Return the upper edge of latency bucket ``i`` in milliseconds."""
    return float(2.0 ** ((i + 1) / 4))


def percentile_ms(stats: ModelStats, q: float) -> float:
    """Return the ``q`` quantile (0..1) of call latency, as its histogram bucket's upper edge.

    Resolution is a quarter octave (about 19 %); the value never exceeds the largest call seen.
    """
    total = sum(stats.latency)
    if not total:
        return 0.0
    need = max(1, -(-int(q * total * 1_000_000) // 1_000_000))  # ceil without float drift
    seen = 0
    for i, n in enumerate(stats.latency):
        seen += n
        if seen >= need:
            return min(bucket_upper_ms(i), stats.max_ms)
    return stats.max_ms


def tokens_per_s(stats: ModelStats) -> float:
    """Return completion tokens per second over successful calls (0 when there were none)."""
    if stats.ok_ms <= 0:
        return 0.0
    return stats.ok_completion_tokens / (stats.ok_ms / 1000.0)
