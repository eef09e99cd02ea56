"""The stored exit outputs (`exit_logits.npz`): the one place that writes and reads them.

The predict pass writes every exit's logits once; calibration, sweeps and analysis
work from these arrays alone. This module imports no torch, so those jobs start in
a fraction of a second.

File layout (no pickled objects):
  exit_layers [E], num_layers [], label_names [C], task_type [], metric [], splits [S],
  num_parameters [] (every parameter of the model as loaded, exit heads included: the
  memory side of the cost; absent from files written before it was added),
  {split}_logits [N, E, C] float32, {split}_labels [N], {split}_lengths [N]
  (unpadded token count), {split}_ids [N], {split}_flops [N, E] (FLOPs spent when
  the example exits at each exit, at its real length: `early_exit.modeling.flops`).
Optional:
  {split}_scores [N, E] float32: per-exit scores that are not logits, written when the
  model has a learned exit gate (BERxiT's LTE outputs u_i); learned policies read them.
  Files without them (older runs, models without a gate) load as before.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from early_exit.support.atomic import atomic_path
from early_exit.support.errors import DataError


def write_exit_outputs(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the stored outputs atomically (a partial file never takes the final name)."""
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def load_exit_logits(path: Path) -> dict[str, np.ndarray]:
    """Read a stored exit-logits file (never unpickles)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        # a truncated or garbled file: not a zip, a member cut short, a bad CRC
        raise DataError(
            f"{path}: cannot read stored exit logits ({err}); rerun the job that wrote it: "
            "rule train (or slenderize)"
        ) from err


def stored_scores(stored: dict, split: str) -> np.ndarray | None:
    """A split's per-exit gate scores [N, E], or None when the run has none."""
    return stored.get(f"{split}_scores")
