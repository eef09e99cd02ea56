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
  sha256 []: a digest of every other array (name, dtype, shape and bytes), written with
  them and checked on read, so a file changed after it was written is refused even when
  it still unzips. Files written before it was added are read with the structure checks
  of `load_exit_logits` alone.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from early_exit.support.atomic import atomic_path
from early_exit.support.errors import DataError

DIGEST = "sha256"


def rewrite(path: Path) -> str:
    """What rewrites a stored-outputs file: a run's own (rule train, or slenderize for a
    COST-EFF model) or a transfer prediction under `transfer/<target>/`."""
    if "transfer" in Path(path).parts:
        return "rerun the job that wrote it: rule predict_transfer"
    return "rerun the job that wrote it: rule train (or slenderize)"


def digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over every array but the digest itself, in name order."""
    h = hashlib.sha256()
    for name in sorted(k for k in arrays if k != DIGEST):
        value = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{value.dtype.str}|{value.shape}|".encode())
        h.update(value.tobytes())
    return h.hexdigest()


def write_exit_outputs(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the stored outputs atomically (a partial file never takes the final name),
    with the digest of their arrays."""
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays, **{DIGEST: np.array(digest(arrays))})


def load_exit_logits(path: Path) -> dict[str, np.ndarray]:
    """Read a stored exit-logits file (never unpickles), checked against its digest and
    for the arrays every reader needs."""
    if not Path(path).is_file():
        raise DataError(f"{path}: stored exit logits missing; {rewrite(path)}")
    if not zipfile.is_zipfile(path):  # np.load would take it for a pickle and say so
        raise DataError(
            f"{path}: cannot read stored exit logits (not an npz archive: truncated or "
            f"garbled); {rewrite(path)}"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        # a truncated or garbled file: not a zip, a member cut short, a bad CRC
        raise DataError(f"{path}: cannot read stored exit logits ({err}); {rewrite(path)}") from err
    written = arrays.pop(DIGEST, None)
    if written is not None and str(written) != digest(arrays):
        raise DataError(
            f"{path}: checksum differs from the one written with it: truncated or changed "
            f"after it was written; {rewrite(path)}"
        )
    problem = structure_problem(arrays)
    if problem:
        raise DataError(f"{path}: not stored exit logits ({problem}); {rewrite(path)}")
    return arrays


def structure_problem(arrays: dict[str, np.ndarray]) -> str | None:
    """What is missing or inconsistent in stored outputs, or None."""
    if "exit_layers" not in arrays:
        return "no exit_layers"
    exits = len(arrays["exit_layers"])
    splits = [str(s) for s in arrays.get("splits", [])]
    splits += [k[: -len("_logits")] for k in arrays if k.endswith("_logits")]
    for split in dict.fromkeys(splits):
        logits, labels = arrays.get(f"{split}_logits"), arrays.get(f"{split}_labels")
        if logits is None or labels is None:
            return f"split {split} without its logits and labels"
        if logits.ndim != 3 or logits.shape[1] != exits or len(labels) != len(logits):
            return (
                f"{split}_logits of shape {logits.shape} for {exits} exits and {len(labels)} labels"
            )
    return None


def stored_scores(stored: dict, split: str) -> np.ndarray | None:
    """A split's per-exit gate scores [N, E], or None when the run has none."""
    return stored.get(f"{split}_scores")
