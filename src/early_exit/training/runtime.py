"""Device choice, seeding and determinism: one code path for CPU and GPU."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from early_exit.support.errors import ConfigError

# The most memory a run may spend on outputs of a fixed network kept for reuse (a frozen
# encoder's exit inputs, COST-EFF's teaching assistant); beyond it they are recomputed.
CACHE_LIMIT_BYTES = 2 * 1024**3


def pick_device(requested: str = "auto") -> torch.device:
    """`auto` takes CUDA when present, else CPU; `cuda` without a GPU is an error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: {requested!r} requested but no CUDA device is available")
    if requested != "cpu" and not requested.startswith("cuda"):
        raise ConfigError(f"device: unknown device {requested!r}; allowed: auto, cpu, cuda[:N]")
    return torch.device(requested)


def seed_everything(seed: int, threads: int | None = None) -> None:
    """Seed every RNG and ask torch for deterministic kernels.

    On CPU this makes training bit-for-bit repeatable; on CUDA it needs the cuBLAS
    workspace setting below (set before the first cuBLAS call).
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if threads:
        torch.set_num_threads(threads)
