"""Where ``swarmlog hw`` places model profiles on the GPUs of a real H100 reading (the fake NVML):
a profile pinned to a GPU index the host lacks was reported as 'larger than any GPU (0.0 GB)',
which sends the user to shrink a model that would fit."""

from __future__ import annotations

from swarmlog.hardware import Probe, place
from swarmlog.routing.profile import Profile
from tests.fake_nvml import make_fake_nvml


def test_a_profile_pinned_to_a_missing_gpu_says_so() -> None:
    gpus = Probe(nvml=make_fake_nvml()).sample().gpus
    assert [g.index for g in gpus] == [0]
    pinned, free = place(
        [Profile(name="m", vram_gb=10, gpu=7), Profile(name="n", vram_gb=10)], gpus
    )
    assert not pinned.fits and pinned.gpu == 7
    assert pinned.reason.startswith("pinned to GPU 7, which this host lacks (it has GPU 0)")
    assert "[models.m].gpu" in pinned.reason and "larger" not in pinned.reason
    assert free.fits and free.gpu == 0
