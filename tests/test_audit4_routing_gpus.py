"""Two GPUs (the real H100 reading twice, through the fake NVML), one of which NVML answers only in
part. A GPU whose memory cannot be read was recorded as 0 GB: the router then refused every model
pinned to it ('GPU 1 has 0.0 GB') and, on a one-GPU host, every sized model; ``hw`` called each
'larger than any GPU (0.0 GB)'. A GPU NVML could not open at all dropped every GPU's reading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from swarmlog.errors import NoRouteAvailable
from swarmlog.events import ConfigLoaded, HardwareSampled, TaskSubmitted
from swarmlog.hardware import Probe, place
from swarmlog.routing import choose_route, project
from swarmlog.routing.profile import Profile
from tests.cli_helpers import run
from tests.fake_nvml import FIXTURE, NVMLError_NotSupported, make_fake_nvml


def _two_gpus(tmp_path: Path, broken: str, *, on: int = 1) -> Any:
    data = json.loads(FIXTURE.read_text())
    data["device_count"] = 2
    data["devices"] = [data["devices"][0], {**data["devices"][0], "uuid": "GPU-second"}]
    fixture = tmp_path / "nvml_two_h100.json"
    fixture.write_text(json.dumps(data))
    fake = make_fake_nvml(fixture=fixture)
    real = getattr(fake, broken)

    def query(h: int, *rest: Any) -> Any:
        if h == on:
            raise NVMLError_NotSupported("Not Supported")
        return real(h, *rest)

    setattr(fake, broken, query)
    return fake


def _route(sample: HardwareSampled, models: dict[str, Any]) -> str:
    task = TaskSubmitted(seq=3, ts=100.0, task_id="t1", title="t", task_kind="general", prompt="x")
    events = [
        ConfigLoaded(seq=1, ts=100.0, config={"models": models}),
        HardwareSampled(seq=2, ts=100.0, gpus=sample.gpus),
        task,
    ]
    return choose_route(project(events), task).model


@pytest.mark.parametrize(
    "broken",
    [
        "nvmlDeviceGetUtilizationRates",
        "nvmlDeviceGetPowerUsage",
        "nvmlDeviceGetTemperature",
        "nvmlDeviceGetMemoryInfo",
        "nvmlDeviceGetHandleByIndex",
    ],
)
def test_one_unsupported_query_on_one_gpu_is_that_gpus_reading(tmp_path: Path, broken: str) -> None:
    sample = Probe(nvml=_two_gpus(tmp_path, broken)).sample()
    assert sample.nvml_error == ""
    assert [g.index for g in sample.gpus] == [0, 1]
    first, second = sample.gpus
    assert first.errors == () and first.mem_total > 80e9 and first.util_gpu is not None
    assert len(second.errors) == 1 and "NotSupported" in second.errors[0], second.errors


def test_a_gpu_of_unread_memory_neither_admits_nor_refuses(tmp_path: Path) -> None:
    sample = Probe(nvml=_two_gpus(tmp_path, "nvmlDeviceGetMemoryInfo")).sample()
    assert sample.gpus[1].mem_total == 0
    pinned = {"endpoint": "http://127.0.0.1:1", "model": "m", "vram_gb": 40, "gpu": 1}
    assert _route(sample, {"big": pinned}) == "big"
    # What the sample does know still counts: GPU 0 cannot hold 200 GB.
    with pytest.raises(NoRouteAvailable, match="GPU 0 has"):
        _route(sample, {"huge": {**pinned, "vram_gb": 200, "gpu": 0}})
    # A GPU the sample lacks is still refused.
    with pytest.raises(NoRouteAvailable, match="pinned to GPU 5"):
        _route(sample, {"far": {**pinned, "gpu": 5}})

    on_one, anywhere = place(
        [Profile(name="big", vram_gb=40, gpu=1), Profile(name="any", vram_gb=200)], sample.gpus
    )
    assert on_one.fits and on_one.gpu == 1, on_one
    assert "GPU 1's memory could not be read (memory: NVMLError_NotSupported" in on_one.reason
    assert "0.0 GB" not in on_one.reason
    assert anywhere.fits and anywhere.gpu == 1 and "could not be read" in anywhere.reason


def test_one_gpu_host_whose_memory_cannot_be_read_still_routes(tmp_path: Path) -> None:
    sample = Probe(nvml=_two_gpus(tmp_path, "nvmlDeviceGetMemoryInfo", on=0)).sample()
    one = HardwareSampled(seq=0, ts=0.0, gpus=sample.gpus[:1])
    assert one.gpus[0].mem_total == 0
    sized = {"endpoint": "http://127.0.0.1:1", "model": "m", "vram_gb": 20}
    assert _route(one, {"m": sized}) == "m"


def test_hw_says_which_gpu_reading_it_could_not_take(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = _two_gpus(tmp_path, "nvmlDeviceGetMemoryInfo")
    monkeypatch.setattr(Probe, "_module", lambda self: fake)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "swarmlog.toml").write_text(
        '[models.big]\nendpoint = "http://127.0.0.1:9/v1"\nmodel = "m"\nvram_gb = 40\ngpu = 1\n'
    )
    assert run(ws, "hw") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("GPU 0: NVIDIA H100 80GB HBM3 85.0/85.5 GB free"), out
    assert out[1].startswith("GPU 1: NVIDIA H100 80GB HBM3 memory unknown, util"), out
    assert out[2] == "GPU 1: not read: memory: NVMLError_NotSupported: Not Supported", out
    assert "0.0/0.0 GB free" not in "\n".join(out)
    assert out[-1].startswith("model big: 40.0 GB: GPU 1's memory could not be read"), out
