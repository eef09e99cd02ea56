"""Hand-made stored runs (what `exit_logits.npz` + `calibration.json` hold) for plot tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from early_exit.analysis.runs import Run


def one_hot_logits(preds: list[list[int]], classes: int = 3, scale: float = 2.0) -> np.ndarray:
    """Logits [N, E, C] whose argmax at example n, exit e is preds[n][e]."""
    preds = np.asarray(preds)
    logits = np.zeros((*preds.shape, classes))
    np.put_along_axis(logits, preds[..., None], scale, axis=-1)
    return logits


def make_run(
    preds: list[list[int]],
    labels: list[int],
    exit_layers: list[int],
    task: str = "news",
    method: str = "m",
    seed: int = 1,
    lengths: list[int] | None = None,
    temperatures: list[float] | None = None,
    num_layers: int | None = None,
    scale: float = 2.0,
) -> Run:
    """The same logits on dev and test; FLOPs proportional to the exit layer."""
    logits = one_hot_logits(preds, scale=scale)
    n = len(labels)
    stored = {
        "exit_layers": np.asarray(exit_layers),
        "num_layers": np.asarray(num_layers or max(exit_layers)),
        "metric": np.asarray("accuracy"),
        "task_type": np.asarray("classification"),
        "label_names": np.asarray(["a", "b", "c"]),
    }
    for split in ("dev", "test"):
        stored[f"{split}_logits"] = logits
        stored[f"{split}_labels"] = np.asarray(labels)
        stored[f"{split}_lengths"] = np.asarray(lengths or [8] * n)
        stored[f"{split}_flops"] = np.tile(np.asarray(exit_layers, float) * 1e6, (n, 1))
    temps = temperatures or [1.0] * len(exit_layers)
    calibration = {"exit_layers": list(exit_layers), "temperatures": temps}
    for split in ("dev", "test"):
        calibration[f"{split}_ece_before"] = [0.2] * len(exit_layers)
        calibration[f"{split}_ece_after"] = [0.1] * len(exit_layers)
    return Run(task, method, seed, stored, calibration)


def save_run(run: Run, root: Path) -> Path:
    """Write a run as the workflow lays it out: root/{task}/{method}/seed{seed}/."""
    path = root / run.task / run.method / f"seed{run.seed}"
    path.mkdir(parents=True)
    np.savez(path / "exit_logits.npz", **run.stored)
    (path / "calibration.json").write_text(json.dumps(run.calibration))
    return path
