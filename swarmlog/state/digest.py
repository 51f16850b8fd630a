"""Stable hashes of projections: the same state gives the same digest in every process."""

from __future__ import annotations

import hashlib

import msgspec

from swarmlog.state.model import SwarmState

__all__ = ["PROJECTIONS", "digest", "digests", "state_digest"]

# Canonical encoding: dict keys sorted, so insertion order never changes a digest. msgspec writes
# floats in their shortest round-trip form, which does not depend on the Python version.
_CANON = msgspec.json.Encoder(order="sorted")

PROJECTIONS = (
    "team",
    "board",
    "trust",
    "decisions",
    "messages",
    "alerts",
    "models",
    "phases",
    "timeline",
    "notes",
)


def digest(value: object) -> str:
    """Return the sha256 hex digest of any projection's canonical JSON."""
    return hashlib.sha256(_CANON.encode(value)).hexdigest()


def state_digest(state: SwarmState) -> str:
    """Return the digest of the whole state (what ``checkpoint_written.state_digest`` records).

    A Scribe records the digest of the state folded up to the event *before* its checkpoint.
    """
    return digest(state)


def digests(state: SwarmState) -> dict[str, str]:
    """Return one digest per projection, plus ``state`` for the whole."""
    out = {name: digest(getattr(state, name)) for name in PROJECTIONS}
    out["state"] = state_digest(state)
    return out
