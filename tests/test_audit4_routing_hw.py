"""The hardware probe when one psutil reading fails (an unreadable /proc in a container): the
sample leaves that reading at 0 (which every reader takes as unknown) and names it, and
``swarmlog hw`` says so in one line; before, the exception escaped as a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest

from swarmlog.hardware import Probe
from tests.cli_helpers import run
from tests.fake_nvml import make_fake_nvml


def _denied(*args: object, **kwargs: object) -> object:
    raise PermissionError(13, "Permission denied", "/proc/meminfo")


@pytest.mark.parametrize("reading", ["virtual_memory", "swap_memory", "cpu_count", "disk_usage"])
def test_probe_survives_one_failing_psutil_reading(
    reading: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(psutil, reading, _denied)
    probe = Probe(nvml=make_fake_nvml(), disk_path=str(tmp_path))
    sample = probe.sample()
    assert len(sample.gpus) == 1 and sample.gpus[0].mem_total > 0
    assert [e.split(":", 1)[0] for e in probe.errors] == [reading]
    assert "Permission denied" in probe.errors[0]
    if reading == "virtual_memory":
        assert sample.ram_total == 0 and sample.ram_available == 0 and sample.ram_percent == 0
    else:
        assert sample.ram_total > 0


def test_hw_says_which_reading_it_could_not_take(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(psutil, "virtual_memory", _denied)
    assert run(tmp_path, "hw") == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err and err == ""
    assert "RAM unknown" in out, out
    assert "not read: virtual_memory: PermissionError" in out, out
    assert run(tmp_path, "hw", "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["not_read"][0].startswith("virtual_memory: PermissionError")
    assert doc["hardware"].get("ram_total", 0) == 0
