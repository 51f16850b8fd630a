"""Hardware probe against the fake NVML from a real H100 reading, placement, and the hw command."""

from __future__ import annotations

import json

import pytest

from swarmlog.cli import main
from swarmlog.events import GpuSample, decode, encode
from swarmlog.hardware import Probe, kv_cache_bytes, need_gb, place
from swarmlog.routing.profile import Profile
from tests.fake_nvml import make_fake_nvml


def test_probe_reads_the_h100_fixture(tmp_path):
    fake = make_fake_nvml()
    sample = Probe(nvml=fake, disk_path=str(tmp_path)).sample()
    assert sample.nvml_error == ""
    assert sample.driver_version == "580.159.04"
    (gpu,) = sample.gpus
    assert gpu.name == "NVIDIA H100 80GB HBM3"
    assert gpu.uuid.startswith("GPU-b315ab1a")
    assert gpu.mem_total == 85520809984 and gpu.mem_used == 503316480
    assert gpu.temperature_c == 32 and gpu.power_mw == 109124 and gpu.mig_enabled is False
    assert sample.ram_total > 0 and sample.cpu_count > 0 and sample.disk_free > 0
    assert fake.calls == ["init", "shutdown"]
    assert decode(encode(sample)) == sample


def test_probe_after_allocation_lists_processes():
    sample = Probe(nvml=make_fake_nvml(after_alloc=True)).sample()
    (gpu,) = sample.gpus
    assert gpu.util_gpu == 42
    assert [(p.pid, p.used_bytes) for p in gpu.processes] == [(402, 22017998848)]


def test_no_driver_is_a_normal_reading():
    sample = Probe(nvml=make_fake_nvml(fail_init=True)).sample()
    assert sample.gpus == ()
    assert "LibraryNotFound" in sample.nvml_error
    assert sample.ram_total > 0


def test_unsupported_query_is_recorded_not_raised():
    fake = make_fake_nvml()

    def broken(h):
        raise fake.NVMLError("Not Supported")

    fake.nvmlDeviceGetTemperature = broken
    (gpu,) = Probe(nvml=fake).sample().gpus
    assert gpu.temperature_c is None
    assert any(e.startswith("temperature:") for e in gpu.errors)
    assert gpu.mem_total > 0


def test_kv_cache_formula_and_need():
    # 32 layers, 8 KV heads of 128, 8k context, 2 slots, f16
    assert kv_cache_bytes(32, 8, 128, 8192, 2) == 2 * 32 * 8 * 128 * 8192 * 2 * 2
    p = Profile(name="m", vram_gb=10.0, parallel=3, context_length=1000)
    assert need_gb(p) == pytest.approx(10.0 + 2 * 1000 * 131072 / 1e9)
    assert need_gb(Profile(name="x")) is None


def test_placement_first_fit_decreasing_and_pins():
    gpus = [
        GpuSample(index=0, mem_total=24 * 10**9, mem_free=24 * 10**9),
        GpuSample(index=1, mem_total=24 * 10**9, mem_free=12 * 10**9),
    ]
    profiles = [
        Profile(name="small", vram_gb=4.0),
        Profile(name="big", vram_gb=20.0),
        Profile(name="huge", vram_gb=40.0),
        Profile(name="pinned", vram_gb=10.0, gpu=1),
        Profile(name="unknown"),
    ]
    by = {p.model: p for p in place(profiles, gpus)}
    assert by["pinned"].gpu == 1 and by["pinned"].fits
    assert by["big"].gpu == 0 and by["big"].fits
    assert by["small"].fits
    assert not by["huge"].fits and "larger than any GPU" in by["huge"].reason
    assert "size unknown" in by["unknown"].reason
    assert not place(profiles[:1], [])[0].fits


def test_hw_command_without_config(tmp_path, capsys):
    assert main(["hw", "--dir", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "ram_total" in data["hardware"] and data["placement"] == []
    (tmp_path / "swarmlog.toml").write_text(
        '[models.fast]\nendpoint = "http://localhost:8001/v1"\nmodel = "m"\nvram_gb = 4\n'
    )
    assert main(["hw", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "RAM" in out and "model fast: 4.0 GB" in out


@pytest.mark.gpu
def test_real_nvml_probe():
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
    except pynvml.NVMLError as exc:
        pytest.skip(f"NVML cannot start here: {exc}")
    sample = Probe().sample()
    assert sample.nvml_error == ""
    assert sample.gpus and all(g.mem_total > 0 and g.name for g in sample.gpus)


def test_hw_uses_the_size_a_server_reported_and_says_size_unknown_once(tmp_path, capsys):
    from swarmlog.events import ModelServerSampled, ResidentModel
    from swarmlog.log import FileLog

    (tmp_path / "swarmlog.toml").write_text(
        '[models.deep]\nendpoint = "http://localhost:11434"\nmodel = "qwen3:32b"\n'
        '[models.other]\nendpoint = "http://localhost:11434"\nmodel = "never-loaded"\n'
    )
    log = FileLog(tmp_path / "memory" / "events", create=True)
    size = 21_500_000_000
    log.append(
        [
            ModelServerSampled(
                endpoint="http://localhost:11434",
                resident=(ResidentModel(name="qwen3:32b", size=size, size_vram=size),),
            )
        ]
    )
    log.close()
    assert main(["hw", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "model deep: 21.5 GB: " in out and "(size as its server reported it)" in out
    (line,) = [x for x in out.splitlines() if x.startswith("model other")]
    assert line.count("size unknown") == 1 and "set vram_gb" in line
    assert main(["hw", "--dir", str(tmp_path), "--json"]) == 0
    by = {p["model"]: p for p in json.loads(capsys.readouterr().out)["placement"]}
    assert by["deep"]["need_gb"] == 21.5 and by["other"]["need_gb"] is None


def test_a_reported_size_is_not_grown_by_more_slots():
    p = Profile(name="m", vram_gb=10.0, parallel=4, context_length=8192)
    assert need_gb(p) > 10.0  # a configured size is weights + one slot
    reported = Profile(name="m", vram_gb=10.0, parallel=4, vram_from_server=True)
    assert need_gb(reported) == 10.0  # the server's size holds every slot's KV cache
