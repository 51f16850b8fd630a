"""Start a scenario's simulated servers and build the config that points the team at them."""

from __future__ import annotations

import asyncio
from typing import Any

from swarmlog.sim import GIB, Faults, SimServer, sim_model
from swarmlog.sim.scenarios import Scenario, make_reply_fn

__all__ = ["SimFleet", "fleet_config", "start_fleet"]

LOCAL = "local"  # capability of the local worker models; the Director's tasks need "director"


class SimFleet:
    """The running servers of a scenario and the config in force for them."""

    def __init__(self, servers: dict[str, SimServer], config: dict[str, Any]) -> None:
        self.servers = servers
        self.config = config

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


def fleet_config(scenario: Scenario, urls: dict[str, str]) -> dict[str, Any]:
    """The swarmlog.toml (as a dict) that points the team at a scenario's servers."""
    models_cfg: dict[str, Any] = {}
    for p in scenario.profiles:
        caps = list(p.capabilities) + ([LOCAL] if p.server != "api" else ["director"])
        models_cfg[p.name] = {
            "endpoint": urls[p.server],
            "model": p.model,
            "api": "sim",
            "capabilities": caps,
            "parallel": p.parallel,
            "context_length": p.context_length,
            "tier": p.tier or None,
            "keep_alive": "60m",
            "timeout_s": 60.0,
            "cost_per_1k_tokens": {"input": p.cost_in, "output": p.cost_out},
        }
    agents: dict[str, Any] = {
        role: {"capabilities": ["director"] if role == "director" else [LOCAL]}
        for role in (
            "director",
            "architect",
            "scout",
            "builder",
            "refactorer",
            "inspector",
            "scribe",
        )
    }
    config = {
        "models": models_cfg,
        "agents": agents,
        "limits": {"max_concurrent": 4, "lease_s": 6.0, "heartbeat_s": 1.0, "queue_depth": 100},
        "run": {"work_dir": "work"},
        "team": {"phases": {"max_iterations": scenario.max_iterations}},
    }
    return config


def _dying(server: SimServer, reply_fn: Any, after: int) -> Any:
    """Wrap a reply function so the server dies once it has answered ``after`` requests.

    Counting requests rather than seconds makes the outage land mid-run however long the
    processes took to start.
    """
    answered = 0

    def reply(model: str, messages: list[dict[str, Any]], options: dict[str, Any]) -> str:
        nonlocal answered
        answered += 1
        if answered == after:
            loop = asyncio.get_running_loop()
            loop.call_later(0.05, lambda: loop.create_task(server.akill()))
        text: str = reply_fn(model, messages, options)
        return text

    return reply


def start_fleet(scenario: Scenario, *, time_scale: float = 0.05, seed: int = 0) -> SimFleet:
    """Start one simulated Ollama server per scenario server name; return them with the config."""
    reply_fn = make_reply_fn(scenario)
    by_server: dict[str, list[Any]] = {}
    for p in scenario.profiles:
        by_server.setdefault(p.server, []).append(p)
    servers: dict[str, SimServer] = {}
    for n, (name, profiles) in enumerate(sorted(by_server.items())):
        spec = scenario.faults.get(name, {})
        models = [
            sim_model(
                p.model,
                p.params_b,
                parallel=p.parallel,
                context_length=p.context_length,
                keep_alive_s=3600.0,
            )
            for p in profiles
        ]
        faults = {k: Faults(**v) for k, v in spec.get("models", {}).items()}
        server = SimServer(
            models,
            vram_bytes=int(scenario.servers.get(name, 80.0) * GIB),
            time_scale=time_scale,
            reply_fn=reply_fn,
            faults=faults,
            die_at_s=spec.get("die_at_s"),
            seed=seed + n,
        )
        if "die_after_requests" in spec:
            server.reply_fn = _dying(server, reply_fn, int(spec["die_after_requests"]))
        servers[name] = server.start()
    config = fleet_config(scenario, {name: server.url for name, server in servers.items()})
    return SimFleet(servers, config)
