"""What rule deck_slides reads, hand-made for the slides tests: operating points, a
trained model's metadata, a prepared task's manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def point(
    method: str,
    policy: str,
    threshold: float,
    seed: int = 1,
    score: float = 0.86,
    speedup: float = 2.0,
    full: float = 0.9,
    flops: float = 1e8,
    task: str = "news",
) -> dict:
    """One row of `operating_points.tsv`: a run's knob chosen on dev, on the test split."""
    return {
        "task": task,
        "method": method,
        "seed": seed,
        "policy": policy,
        "test_split": "test",
        "metric": "accuracy",
        "threshold": threshold,
        "test_score_full": full,
        "test_score": score,
        "test_speedup": speedup,
        "test_flops": flops,
    }


def operating_points(rows: list[dict]) -> pd.DataFrame:
    """The operating-points table of `point` rows."""
    return pd.DataFrame(rows)


def write_model(root: Path, method: str, meta: dict, task: str = "news", seed: int = 1) -> Path:
    """`results/{task}/{method}/seed{seed}/model` under `root` with its `exit_config.json`
    (`meta` and the seed) and a 6-layer backbone's `config.json`."""
    path = root / "results" / task / method / f"seed{seed}" / "model"
    path.mkdir(parents=True)
    (path / "exit_config.json").write_text(json.dumps({"seed": seed, **meta}))
    (path / "config.json").write_text(json.dumps({"num_hidden_layers": 6, "hidden_size": 384}))
    return path


def write_manifest(data_dir: Path, size: int = 425, max_length: int = 48) -> Path:
    """A prepared task's `manifest.json` (two classes, `size` examples per split) that
    `early_exit.data.prepared.load_manifest` accepts."""
    split = {"size": size, "sha256": "0"}
    manifest = {
        "splits": {"train": split, "dev": split, "test": split},
        "label_names": ["a", "b"],
        "max_length": max_length,
        "metric": "accuracy",
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path
