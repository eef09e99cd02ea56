"""What a job ran on, recorded next to its results (the deck's setup slide reports it).

On a cluster the jobs run on compute nodes, not where the deck is built, so the
record is taken inside the job itself and stored with the model.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else what platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def usable_cores() -> int:
    """CPU cores this process may run on (a SLURM allocation, not the whole node)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@functools.cache
def native_bf16(device) -> bool:
    """Whether `device` multiplies bf16 matrices in hardware: CUDA GPUs from Ampere on,
    CPUs with AVX512_BF16 or AMX. Elsewhere bf16 is emulated, slower than fp32."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, name, lambda: False)() for name in checks)
    return False


def describe(device: str) -> dict:
    """The hardware and software a job used: CPU, cores, torch and the CUDA device if any."""
    import torch

    cuda = None
    if str(device).startswith("cuda") and torch.cuda.is_available():
        cuda = torch.cuda.get_device_name(torch.device(device))
    return {
        "device": str(device),
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda_device": cuda,
        "python": platform.python_version(),
    }
