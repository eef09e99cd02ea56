"""Threshold sweeps from stored logits into a tidy table (the workflow's sweep stage).

Cost is reported three ways with unambiguous names:
  avg_exit_layer      mean layer number at which examples exit (1..L)
  layer_fraction_used avg_exit_layer / L
  speedup             L / avg_exit_layer   (a ratio, not a saving)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from early_exit.atomic import atomic_path
from early_exit.metrics import score
from early_exit.policies import get_policy
from early_exit.predict import load_exit_logits


def decide(logits: np.ndarray, exit_idx: np.ndarray) -> np.ndarray:
    """Predicted labels [K, N] given the exit each example takes under each knob value."""
    n = np.arange(logits.shape[0])
    return logits[n[None, :], exit_idx].argmax(-1)


def sweep_split(stored: dict, split: str, policy: str, grid: np.ndarray) -> pd.DataFrame:
    """One row per knob value: task metric, accuracy and cost."""
    exits_fn, _ = get_policy(policy)
    logits, labels = stored[f"{split}_logits"], stored[f"{split}_labels"]
    layers = stored["exit_layers"]
    num_layers = int(stored["num_layers"])
    metric = str(stored["metric"])
    exit_idx = exits_fn(logits, grid)  # [K, N]
    preds = decide(logits, exit_idx)
    avg_layer = layers[exit_idx].mean(1)
    return pd.DataFrame(
        {
            "split": split,
            "policy": policy,
            "threshold": grid,
            "metric": metric,
            "score": [score(metric, labels, p) for p in preds],
            "accuracy": (preds == labels[None, :]).mean(1),
            "avg_exit_layer": avg_layer,
            "layer_fraction_used": avg_layer / num_layers,
            "speedup": num_layers / avg_layer,
        }
    )


def sweep_file(
    logits_path: Path,
    out_path: Path,
    policies: dict,
    splits: list[str],
    labels: dict[str, str | int],
) -> pd.DataFrame:
    """Sweep every configured policy over every split; `labels` (task, method, seed) go first."""
    stored = load_exit_logits(logits_path)
    num_labels = len(stored["label_names"])
    frames = []
    for name, cfg in policies.items():
        _, grid_fn = get_policy(name)
        grid = grid_fn(num_labels, cfg["num_thresholds"])
        frames.extend(sweep_split(stored, split, name, grid) for split in splits)
    table = pd.concat(frames, ignore_index=True)
    for i, (key, value) in enumerate(labels.items()):
        table.insert(i, key, value)
    with atomic_path(out_path) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    return table
