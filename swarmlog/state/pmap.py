"""A persistent string-keyed map: cheap copy-on-write updates for big projection containers.

Keys are spread over 16 by 16 buckets by CRC-32 (stable across processes, unlike ``hash()``), so
an update copies two 16-tuples and one small dict instead of the whole map. Every bucket dict is
treated as immutable once published; nothing mutates a dict another state may hold.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Generic, TypeVar, cast

import msgspec

__all__ = ["PMap", "empty_pmap"]

V = TypeVar("V")

_FAN = 16


def _slot(key: str) -> tuple[int, int]:
    h = zlib.crc32(key.encode("utf-8", "surrogatepass"))
    return (h >> 4) & 0xF, h & 0xF


class PMap(msgspec.Struct, Generic[V], frozen=True, array_like=True, gc=False):
    """An immutable mapping from str to ``V``; ``set`` and ``delete`` return a new map."""

    size: int = 0
    buckets: tuple[tuple[dict[str, V], ...], ...] = ()

    def get(self, key: str) -> V | None:
        """Return the value for ``key``, or None."""
        if not self.size:
            return None
        i, j = _slot(key)
        return self.buckets[i][j].get(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __len__(self) -> int:
        return self.size

    def set(self, key: str, value: V) -> PMap[V]:
        """Return a map with ``key`` bound to ``value``."""
        buckets = self.buckets or cast("tuple[tuple[dict[str, V], ...], ...]", _EMPTY_BUCKETS)
        i, j = _slot(key)
        row = buckets[i]
        old = row[j]
        new = old.copy()
        new[key] = value
        size = self.size + (key not in old)
        new_row = (*row[:j], new, *row[j + 1 :])
        return PMap(size, (*buckets[:i], new_row, *buckets[i + 1 :]))

    def delete(self, key: str) -> PMap[V]:
        """Return a map without ``key`` (the same map when it is absent)."""
        if not self.size:
            return self
        i, j = _slot(key)
        row = self.buckets[i]
        if key not in row[j]:
            return self
        new = row[j].copy()
        del new[key]
        new_row = (*row[:j], new, *row[j + 1 :])
        return PMap(self.size - 1, (*self.buckets[:i], new_row, *self.buckets[i + 1 :]))

    def items(self) -> Iterator[tuple[str, V]]:
        """Yield every (key, value) pair in key order."""
        pairs = [kv for row in self.buckets for bucket in row for kv in bucket.items()]
        pairs.sort(key=lambda kv: kv[0])
        yield from pairs

    def unordered_values(self) -> Iterator[V]:
        """Yield every value in bucket order: for a caller that sorts what it keeps itself."""
        for row in self.buckets:
            for bucket in row:
                yield from bucket.values()

    def values(self) -> Iterator[V]:
        """Yield every value in key order."""
        for _, value in self.items():
            yield value


_EMPTY_BUCKETS: tuple[tuple[dict[str, object], ...], ...] = tuple(
    tuple({} for _ in range(_FAN)) for _ in range(_FAN)
)


def empty_pmap() -> PMap[V]:
    """Return an empty map (its buckets are created on the first ``set``)."""
    return PMap()
