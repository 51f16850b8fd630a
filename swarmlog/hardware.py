"""Hardware probe (NVML + psutil → ``hardware_sampled``) and VRAM placement of model profiles.

No driver, no GPU or an unsupported query is a normal reading, never a crash: the sample records
``nvml_error`` or a per-GPU ``errors`` entry instead.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, TypeVar

import msgspec
import psutil  # type: ignore[import-untyped]  # no stubs in the pinned dev set

from swarmlog.events import GpuProcess, GpuSample, HardwareSampled
from swarmlog.routing.profile import Profile

__all__ = [
    "HOSTED_APIS",
    "KV_BYTES_PER_TOKEN",
    "Placement",
    "Probe",
    "kv_cache_bytes",
    "need_gb",
    "place",
]

_GB = 1e9
# Profiles whose model runs on the provider's machines, never on this host's GPUs or RAM.
HOSTED_APIS = frozenset({"anthropic"})
_GIB = 1024.0**3
# When the server does not tell us the architecture, assume 128 KiB of f16 KV cache per token of
# context per slot (a 7B-32B GQA model is 56-256 KiB); PROTOCOLS.md gives the exact formula.
KV_BYTES_PER_TOKEN = 131072

T = TypeVar("T")


def kv_cache_bytes(
    layers: int, kv_heads: int, head_dim: int, num_ctx: int, parallel: int, elem_bytes: int = 2
) -> int:
    """Return Ollama's KV-cache estimate: 2 * layers * kv_heads * head_dim * ctx * slots * bytes."""
    return 2 * layers * kv_heads * head_dim * num_ctx * parallel * elem_bytes


def need_gb(profile: Profile) -> float | None:
    """Return the VRAM a profile needs with all its slots: ``vram_gb`` (weights + one slot) + KV.

    A size the server reported (``vram_from_server``) already holds the KV cache of every slot.
    """
    if profile.vram_gb is None:
        return None
    if profile.vram_from_server:
        return profile.vram_gb
    extra_slots = profile.slots - 1
    return profile.vram_gb + extra_slots * profile.context_length * KV_BYTES_PER_TOKEN / _GB


class Placement(msgspec.Struct, frozen=True, kw_only=True):
    """Where a model profile fits."""

    model: str
    gpu: int | None
    need_gb: float | None
    fits: bool
    reason: str


def place(profiles: Sequence[Profile], gpus: Sequence[GpuSample]) -> list[Placement]:
    """Place profiles on GPUs by first-fit decreasing on memory that is free now.

    Pinned profiles (``gpu = N``) go to their GPU. A profile of unknown size is reported as such;
    a hosted one (``api = "anthropic"``) fits, on no GPU.
    """
    # A GPU whose memory NVML could not read (mem_total 0) is of unknown size, not of 0 GB.
    unknown = {
        g.index: "; ".join(g.errors) or "no memory reading" for g in gpus if g.mem_total <= 0
    }
    free = {g.index: g.mem_free / _GB for g in gpus if g.mem_total > 0}
    total = {g.index: g.mem_total / _GB for g in gpus if g.mem_total > 0}
    out: dict[str, Placement] = {}
    sized = sorted(profiles, key=lambda p: (p.gpu is None, -(need_gb(p) or 0.0), p.name))
    for p in sized:
        need = need_gb(p)
        if p.api in HOSTED_APIS:
            out[p.name] = Placement(
                model=p.name,
                gpu=None,
                need_gb=None,
                fits=True,
                reason=f"hosted ({p.api} API): needs no GPU or RAM here",
            )
            continue
        if need is None:
            out[p.name] = Placement(
                model=p.name,
                gpu=p.gpu,
                need_gb=None,
                fits=bool(gpus),
                reason=(
                    "size unknown: set vram_gb, or load the model once so its server reports "
                    "its size (Ollama /api/ps)"
                ),
            )
            continue
        source = " (size as its server reported it)" if p.vram_from_server else ""
        if not gpus:
            out[p.name] = Placement(
                model=p.name,
                gpu=None,
                need_gb=need,
                fits=False,
                reason=f"no GPU: runs on the CPU{source}",
            )
            continue
        if p.gpu in unknown or (p.gpu is None and not free and unknown):
            where = p.gpu if p.gpu is not None else min(unknown)
            out[p.name] = Placement(
                model=p.name,
                gpu=where,
                need_gb=need,
                fits=True,
                reason=(
                    f"GPU {where}'s memory could not be read ({unknown[where]}): cannot tell "
                    f"whether it fits{source}"
                ),
            )
            continue
        if p.gpu is not None and p.gpu not in free:
            have = ", ".join(str(g.index) for g in gpus)
            out[p.name] = Placement(
                model=p.name,
                gpu=p.gpu,
                need_gb=need,
                fits=False,
                reason=(
                    f"pinned to GPU {p.gpu}, which this host lacks (it has GPU {have}); set "
                    f"[models.{p.name}].gpu to one of them, or remove it"
                ),
            )
            continue
        options = [p.gpu] if p.gpu is not None else sorted(free, key=lambda i: (-free[i], i))
        chosen = next((i for i in options if i in free and free[i] >= need), None)
        if chosen is not None:
            free[chosen] -= need
            out[p.name] = Placement(
                model=p.name,
                gpu=chosen,
                need_gb=need,
                fits=True,
                reason=f"fits on GPU {chosen} ({free[chosen]:.1f} GB left){source}",
            )
            continue
        if p.gpu is None and unknown:
            where = min(unknown)
            out[p.name] = Placement(
                model=p.name,
                gpu=where,
                need_gb=need,
                fits=True,
                reason=(
                    f"no GPU of known memory has {need:.1f} GB free; GPU {where}'s memory could "
                    f"not be read ({unknown[where]}): cannot tell whether it fits{source}"
                ),
            )
            continue
        best = max((total[i] for i in options if i in total), default=0.0)
        why = (
            f"needs {need:.1f} GB; larger than any GPU ({best:.1f} GB)"
            if need > best
            else f"needs {need:.1f} GB; fits only after evicting other models"
        )
        out[p.name] = Placement(
            model=p.name, gpu=p.gpu, need_gb=need, fits=False, reason=f"{why}{source}"
        )
    return [out[p.name] for p in profiles]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Probe:
    """Sample the host: ``Probe().sample()`` returns a ``HardwareSampled`` event.

    ``nvml`` replaces the ``pynvml`` module (tests pass a fake); ``disk_path`` is where free disk
    space is measured.
    """

    def __init__(self, nvml: ModuleType | Any | None = None, *, disk_path: str = ".") -> None:
        self._nvml = nvml
        self._disk_path = disk_path
        # What the last sample could not read besides the GPUs ("virtual_memory: OSError: ...").
        self.errors: tuple[str, ...] = ()

    def _module(self) -> Any:
        if self._nvml is not None:
            return self._nvml
        import pynvml  # imported here: a host without the driver still imports swarmlog

        return pynvml

    def sample(self) -> HardwareSampled:
        """Take one reading.

        A psutil reading that fails (an unreadable /proc in a container, say) is left at 0, which
        every reader takes as unknown, and named in ``errors``; it never fails the sample.
        """
        gpus, nvml_error, driver = self._gpus()
        errors: list[str] = []
        opt = self._opt
        vm = opt(None, psutil.virtual_memory, errors, None, "virtual_memory")
        swap = opt(None, psutil.swap_memory, errors, None, "swap_memory")
        try:
            load = tuple(round(x, 3) for x in os.getloadavg())
        except OSError:
            load = ()
        disk = opt(None, lambda: psutil.disk_usage(self._disk_path), errors, None, "disk_usage")
        cpus = opt(None, psutil.cpu_count, errors, None, "cpu_count")
        self.errors = tuple(errors)
        return HardwareSampled(
            host=socket.gethostname(),
            gpus=gpus,
            nvml_error=nvml_error,
            driver_version=driver,
            cpu_count=cpus or 0,
            ram_total=vm.total if vm is not None else 0,
            ram_available=vm.available if vm is not None else 0,
            ram_percent=vm.percent if vm is not None else 0.0,
            swap_total=swap.total if swap is not None else 0,
            swap_used=swap.used if swap is not None else 0,
            load_avg=load,
            disk_free=disk.free if disk is not None else 0,
        )

    def _gpus(self) -> tuple[tuple[GpuSample, ...], str, str]:
        try:
            nv = self._module()
        except ImportError as exc:
            return (), f"pynvml not importable: {exc}", ""
        try:
            nv.nvmlInit()
        except Exception as exc:  # NVMLError_LibraryNotFound, _DriverNotLoaded, …
            return (), f"{type(exc).__name__}: {exc}", ""
        try:
            driver = self._opt(nv, lambda: _text(nv.nvmlSystemGetDriverVersion()), [], "")
            count = nv.nvmlDeviceGetCount()
            return tuple(self._gpu(nv, i) for i in range(count)), "", driver
        except Exception as exc:
            return (), f"{type(exc).__name__}: {exc}", ""
        finally:
            try:
                nv.nvmlShutdown()
            except Exception:  # shutting down a half-initialised library is best effort
                pass

    @staticmethod
    def _opt(nv: Any, query: Callable[[], T], errors: list[str], default: T, name: str = "") -> T:
        try:
            return query()
        except Exception as exc:
            if name:
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
            return default

    def _gpu(self, nv: Any, index: int) -> GpuSample:
        errors: list[str] = []
        opt = self._opt
        # A GPU NVML cannot open (fallen off the bus, say) is one GPU's reading, not every GPU's.
        h = opt(nv, lambda: nv.nvmlDeviceGetHandleByIndex(index), errors, None, "handle")
        if h is None:
            return GpuSample(index=index, errors=tuple(errors))
        mem = opt(nv, lambda: nv.nvmlDeviceGetMemoryInfo(h), errors, None, "memory")
        util = opt(nv, lambda: nv.nvmlDeviceGetUtilizationRates(h), errors, None, "utilization")
        temp = opt(
            nv,
            lambda: int(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)),
            errors,
            None,
            "temperature",
        )
        power = opt(nv, lambda: int(nv.nvmlDeviceGetPowerUsage(h)), errors, None, "power")
        limit = opt(
            nv, lambda: int(nv.nvmlDeviceGetPowerManagementLimit(h)), errors, None, "power_limit"
        )
        mig = opt(nv, lambda: bool(nv.nvmlDeviceGetMigMode(h)[0]), errors, None, "mig")
        no_procs: list[Any] = []
        procs = opt(
            nv, lambda: nv.nvmlDeviceGetComputeRunningProcesses(h), errors, no_procs, "procs"
        )
        return GpuSample(
            index=index,
            name=opt(nv, lambda: _text(nv.nvmlDeviceGetName(h)), errors, "", "name"),
            uuid=opt(nv, lambda: _text(nv.nvmlDeviceGetUUID(h)), errors, "", "uuid"),
            mem_total=int(mem.total) if mem is not None else 0,
            mem_free=int(mem.free) if mem is not None else 0,
            mem_used=int(mem.used) if mem is not None else 0,
            util_gpu=int(util.gpu) if util is not None else None,
            util_mem=int(util.memory) if util is not None else None,
            temperature_c=temp,
            power_mw=power,
            power_limit_mw=limit,
            mig_enabled=mig,
            processes=tuple(
                GpuProcess(
                    pid=int(p.pid),
                    used_bytes=int(p.usedGpuMemory) if p.usedGpuMemory is not None else None,
                )
                for p in procs
            ),
            errors=tuple(errors),
        )
