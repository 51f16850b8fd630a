"""Two 50 GB models pinned to one H100 (the fake NVML's reading) cannot sit side by side. Loading
one while the other has work waits for that work to drain and for the other to load back, and
the router adds that wait to the load term, but the reason said only 'load 63.384s ...; cold load
evicts b': the 38.384 s of it spent on b could not be found in anything printed."""

from __future__ import annotations

import re

from swarmlog.events import ConfigLoaded, HardwareSampled, TaskRouted, TaskSubmitted
from swarmlog.hardware import Probe
from swarmlog.routing import choose_route, project
from tests.fake_nvml import make_fake_nvml


def test_an_eviction_says_how_much_of_the_load_it_is() -> None:
    gpus = Probe(nvml=make_fake_nvml()).sample().gpus
    models = {
        name: {"endpoint": f"http://127.0.0.1:{port}", "model": name, "vram_gb": 50, "gpu": 0}
        for name, port in (("a", 1), ("b", 2))
    }
    events: list = [
        ConfigLoaded(seq=1, ts=100.0, config={"models": models}),
        HardwareSampled(seq=2, ts=100.0, gpus=gpus),
    ]
    seq = 3
    decisions = []
    for n in range(2):
        task = TaskSubmitted(
            seq=seq, ts=100.0, task_id=f"t{n}", title="t", task_kind="general", prompt="x"
        )
        events.append(task)
        routed = choose_route(project(events), task)
        decisions.append(routed)
        events.append(
            TaskRouted(
                seq=seq + 1,
                ts=100.0,
                task_id=task.task_id,
                model=routed.model,
                reason=routed.reason,
                candidates=routed.candidates,
            )
        )
        seq += 2
    first = decisions[0].model
    other = next(c for c in decisions[1].candidates if c.model != first)
    m = re.match(
        rf"load ([\d.]+)s \+ service ([\d.]+)s; cold load evicts {first} "
        rf"\(([\d.]+)s of the load waits for its work to drain and reload\)$",
        other.reason,
    )
    assert m, other.reason
    load, service, drain = map(float, m.groups())
    assert abs(load - drain - 25.0) < 0.002  # its own cold load: 50 GB at 2 GB/s
    assert other.expected_s is not None and abs(other.expected_s - load - service) < 0.002
