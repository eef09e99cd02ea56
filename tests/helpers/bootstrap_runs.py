"""Stored outputs of small synthetic runs with their sweeps, for the bootstrap and the
tests between methods (tests/analysis)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from early_exit.exits.stored import write_exit_outputs
from early_exit.exits.sweep import sweep_file

POLICIES = {"entropy": {"num_thresholds": 11}, "patience": {}}


def stored(n=150, exits=(1, 2, 4), seed=0, skill=(0.5, 1.5, 3.0), order=None):
    """Stored outputs of a 3-class, 4-layer model; `skill` sets how good each exit is."""
    rng = np.random.default_rng(seed)
    arrays = {
        "exit_layers": np.array(exits),
        "num_layers": np.array(4),
        "label_names": np.array(["a", "b", "c"]),
        "task_type": np.array("classification"),
        "metric": np.array("accuracy"),
        "splits": np.array(["dev", "test"]),
    }
    for split, offset in (("dev", 0), ("test", 1000)):
        labels = np.random.default_rng(offset).integers(0, 3, n)  # the same task for every run
        logits = rng.normal(size=(n, len(exits), 3))
        logits[np.arange(n), :, labels] += np.asarray(skill)
        lengths = np.random.default_rng(offset + 1).integers(3, 20, n)  # the same examples
        ids = np.array([f"{split}/{i:03d}" for i in range(n)])
        perm = np.arange(n) if order is None else order(n)
        arrays |= {
            f"{split}_logits": logits.astype(np.float32)[perm],
            f"{split}_labels": labels[perm],
            f"{split}_lengths": lengths[perm],
            f"{split}_ids": ids[perm],
            f"{split}_flops": (lengths[:, None] * np.array(exits)[None, :] * 1e6)[perm],
        }
    return arrays


def make_run(root: Path, task: str, method: str, seed: int, arrays: dict) -> Path:
    run = root / task / method / f"seed{seed}"
    run.mkdir(parents=True)
    write_exit_outputs(run / "exit_logits.npz", arrays)
    (run / "calibration.json").write_text(json.dumps({"temperatures": None}))
    key = {"task": task, "method": method, "seed": seed}
    sweep_file(run / "exit_logits.npz", run / "sweep.tsv", POLICIES, None, key)
    return run / "sweep.tsv"
