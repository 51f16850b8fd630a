"""``route`` and ``hw`` in the workspace of a simulated night (``swarmlog run --sim demo``): its
swarmlog.toml has no [models] (the simulation supplies them, and the log's config_loaded records
them), and route fell back to the seed's example profiles, whose fast/deep capabilities differ:
the Director's plan task, which the night routed to 'director', was explained as going to 'fast',
and hw placed nothing. Both now use the config the log recorded, and say so."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli_helpers import swarmlog_in


def test_route_and_hw_after_a_simulated_night_use_its_config(tmp_path: Path) -> None:
    done = swarmlog_in(tmp_path, "run", "--sim", "demo", "a small goal")
    assert done.returncode == 0, done.stderr
    routed = [
        json.loads(line)
        for line in swarmlog_in(
            tmp_path, "log", "--kind", "task_routed", "--json"
        ).stdout.splitlines()
    ]
    night = next(r for r in routed if r["task_id"] == "plan")
    assert night["model"] == "director"

    done = swarmlog_in(tmp_path, "route", "--task-kind", "plan", "--role", "director", "--explain")
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()[:2]
    assert "no [models] in" in first and "config_loaded at seq" in first, first
    assert second.startswith("route cli-task -> director "), second
    assert "seed's example profiles" not in done.stdout

    done = swarmlog_in(tmp_path, "hw", "--json")
    assert done.returncode == 0, done.stderr
    placed = {p["model"] for p in json.loads(done.stdout)["placement"]}
    assert placed == {m["model"] for m in night["candidates"]} == {"deep", "director", "fast"}
    assert "placing the models the log's config_loaded" in swarmlog_in(tmp_path, "hw").stdout
