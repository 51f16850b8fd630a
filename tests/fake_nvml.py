"""A fake ``pynvml`` module built from a real H100 reading (tests/fixtures/nvml_h100.json)."""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any

__all__ = ["FIXTURE", "NVMLError", "make_fake_nvml"]

FIXTURE = Path(__file__).parent / "fixtures" / "nvml_h100.json"


class NVMLError(Exception):
    """Base of the fake NVML errors, like ``pynvml.NVMLError``."""


class NVMLError_LibraryNotFound(NVMLError):
    pass


class NVMLError_NotSupported(NVMLError):
    pass


def make_fake_nvml(
    *, fail_init: bool = False, after_alloc: bool = False, fixture: Path = FIXTURE
) -> types.SimpleNamespace:
    """Return an object with pynvml's function names answering from the fixture.

    ``fail_init`` makes ``nvmlInit`` raise as on a host without the driver; ``after_alloc`` answers
    memory and processes from the reading taken after a 20 GiB allocation.
    """
    data: dict[str, Any] = json.loads(fixture.read_text())
    devices = data["devices"]
    alloc = data["after_20GiB_alloc"]
    calls: list[str] = []

    def init() -> None:
        calls.append("init")
        if fail_init:
            raise NVMLError_LibraryNotFound("NVML Shared Library Not Found")

    def memory(h: int, version: Any = None) -> Any:
        m = alloc if after_alloc else devices[h]["memory"]
        return types.SimpleNamespace(total=m["total"], free=m["free"], used=m["used"])

    def processes(h: int) -> list[Any]:
        procs = alloc["procs"] if after_alloc else devices[h]["compute_processes"]
        return [
            types.SimpleNamespace(pid=p["pid"], usedGpuMemory=p["used_gpu_memory"]) for p in procs
        ]

    def fan(h: int) -> int:
        raise NVMLError_NotSupported("Not Supported")

    def util(h: int) -> Any:
        u = data["after_matmul_util"] if after_alloc else devices[h]["utilization"]
        return types.SimpleNamespace(gpu=u["gpu"], memory=u["memory"])

    return types.SimpleNamespace(
        NVMLError=NVMLError,
        NVML_TEMPERATURE_GPU=0,
        calls=calls,
        nvmlInit=init,
        nvmlShutdown=lambda: calls.append("shutdown"),
        nvmlSystemGetDriverVersion=lambda: data["driver_version"],
        nvmlDeviceGetCount=lambda: data["device_count"],
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda h: devices[h]["name"],
        nvmlDeviceGetUUID=lambda h: devices[h]["uuid"],
        nvmlDeviceGetMemoryInfo=memory,
        nvmlDeviceGetUtilizationRates=util,
        nvmlDeviceGetTemperature=lambda h, sensor: devices[h]["temperature_c"],
        nvmlDeviceGetPowerUsage=lambda h: devices[h]["power_mw"],
        nvmlDeviceGetPowerManagementLimit=lambda h: devices[h]["power_limit_mw"],
        nvmlDeviceGetMigMode=lambda h: devices[h]["mig_mode"],
        nvmlDeviceGetComputeRunningProcesses=processes,
        nvmlDeviceGetFanSpeed=fan,
    )
