"""Simulated Ollama model servers on loopback, for ``api = "sim"`` runs and for tests."""

from __future__ import annotations

from swarmlog.sim.http import HttpServer, Request, Response
from swarmlog.sim.models import (
    NIGHT_IN_A_MINUTE,
    Faults,
    ReplyFn,
    SimModel,
    default_reply,
    sim_model,
)
from swarmlog.sim.server import BUSY_MESSAGE, GIB, SimServer, SimStats

__all__ = [
    "BUSY_MESSAGE",
    "GIB",
    "NIGHT_IN_A_MINUTE",
    "Faults",
    "HttpServer",
    "ReplyFn",
    "Request",
    "Response",
    "SimModel",
    "SimServer",
    "SimStats",
    "default_reply",
    "sim_model",
]
