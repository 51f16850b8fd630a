"""Run a simulated Ollama server for a human: ``python -m swarmlog.sim --model qwen3:32b``."""

from __future__ import annotations

import argparse
import re
import threading

from swarmlog.sim.models import SimModel, sim_model
from swarmlog.sim.server import GIB, SimServer

__all__ = ["main", "model_from_name"]


def model_from_name(name: str, *, parallel: int, keep_alive_s: float) -> SimModel:
    """Build a model spec from a tag such as ``qwen3:32b`` (the size is read from the tag)."""
    match = re.search(r"(\d+(?:\.\d+)?)b\b", name.lower())
    params_b = float(match.group(1)) if match else 7.0
    return sim_model(name, params_b, parallel=parallel, keep_alive_s=keep_alive_s)


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m swarmlog.sim",
        description="Serve simulated models over Ollama's HTTP protocol on 127.0.0.1.",
        epilog="example: python -m swarmlog.sim --port 11434 --model qwen3:32b --parallel 2",
    )
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument("--model", action="append", default=[], help="a model tag; repeatable")
    parser.add_argument("--parallel", type=int, default=1, help="slots per model")
    parser.add_argument("--keep-alive", type=float, default=300.0, help="seconds (simulated)")
    parser.add_argument("--vram-gib", type=float, default=80.0)
    parser.add_argument("--time-scale", type=float, default=1.0, help="real s per simulated s")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    names = args.model or ["qwen3:32b"]
    models = [
        model_from_name(n, parallel=args.parallel, keep_alive_s=args.keep_alive) for n in names
    ]
    server = SimServer(
        models,
        port=args.port,
        vram_bytes=int(args.vram_gib * GIB),
        time_scale=args.time_scale,
        seed=args.seed,
    )
    with server:
        print(f"simulated Ollama at {server.url} serving {', '.join(names)}; Ctrl-C stops it")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
