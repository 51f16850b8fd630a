"""GPU sizes in one unit: ``hw`` prints GPU memory and model sizes in GB (1e9 bytes), servers
report model sizes in bytes that the router turns into ``vram_gb`` by 1e9, but the router measured
the GPU in GiB. On the real H100 reading (85.5 GB) an 82 GB model was 'fits on GPU 0' in hw and
'needs 82 GB VRAM; GPU 0 has 79.6 GB' in route, which refused it."""

from __future__ import annotations

import json
from pathlib import Path

from swarmlog.events import HardwareSampled
from swarmlog.hardware import Probe, place
from swarmlog.log import FileLog
from swarmlog.routing.profile import Profile
from tests.cli_helpers import one_error_line, swarmlog_in
from tests.fake_nvml import make_fake_nvml

CONFIG = """
[models.big]
endpoint = "http://127.0.0.1:9/v1"
model = "big-model"
vram_gb = 82
gpu = 0
"""


def test_route_and_hw_agree_on_a_model_near_the_gpus_size(tmp_path: Path) -> None:
    gpus = Probe(nvml=make_fake_nvml()).sample().gpus
    assert 85.5e9 < gpus[0].mem_total < 85.6e9
    (placement,) = place([Profile(name="big", vram_gb=82, gpu=0)], gpus)
    assert placement.fits, placement

    (tmp_path / "swarmlog.toml").write_text(CONFIG)
    log = FileLog(tmp_path / "memory" / "events")
    log.append([HardwareSampled(gpus=gpus)])
    log.close()
    done = swarmlog_in(tmp_path, "route", "--json")
    assert done.returncode == 0, done.stderr
    decision = json.loads(done.stdout)["decision"]
    assert decision["model"] == "big", decision
    (cand,) = decision["candidates"]
    assert cand.get("eligible", True) and "cold load" in cand["reason"], cand

    too_big = CONFIG.replace("vram_gb = 82", "vram_gb = 86")
    (tmp_path / "swarmlog.toml").write_text(too_big)
    done = swarmlog_in(tmp_path, "route")
    assert done.returncode == 1
    assert "needs 86 GB VRAM; GPU 0 has 85.5 GB" in one_error_line(done.stderr)
