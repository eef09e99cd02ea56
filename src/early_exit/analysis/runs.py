"""Stored runs for the analysis notebooks: one record per (task, method, seed).

A run directory `results/{task}/{method}/seed{seed}/` holds the stored exit logits
(`exit_logits.npz`) and the per-exit calibration (`calibration.json`). The
notebooks get run directories as parameters and read them through `load_runs`,
so they never parse paths or open files themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from early_exit.exits.policies import Outputs
from early_exit.exits.stored import load_exit_logits, stored_scores
from early_exit.exits.sweep import read_calibration
from early_exit.support.errors import DataError
from early_exit.support.layout import parse_run_dir


@dataclass
class Run:
    """One trained model's stored outputs on dev and test."""

    task: str
    method: str
    seed: int
    stored: dict[str, np.ndarray]
    calibration: dict | None = None

    @property
    def exit_layers(self) -> np.ndarray:
        return self.stored["exit_layers"]

    @property
    def num_layers(self) -> int:
        return int(self.stored["num_layers"])

    @property
    def metric(self) -> str:
        return str(self.stored["metric"])

    @property
    def task_type(self) -> str:
        return str(self.stored["task_type"])

    @property
    def temperatures(self) -> np.ndarray | None:
        temps = (self.calibration or {}).get("temperatures")
        return None if temps is None else np.asarray(temps, dtype=np.float64)

    def outputs(self, split: str) -> Outputs:
        """What the exit policies see of one split, with the dev-fitted temperatures."""
        return Outputs(
            self.stored[f"{split}_logits"],
            self.stored[f"{split}_labels"],
            self.task_type,
            self.temperatures,
            stored_scores(self.stored, split),
        )


def load_run(path: str | Path) -> Run:
    """Read a run's stored logits and, when present, its calibration report."""
    path = Path(path)
    task, method, seed = parse_run_dir(path)
    calibration = None
    if (path / "calibration.json").is_file():
        calibration = read_calibration(path / "calibration.json")
    return Run(task, method, seed, load_exit_logits(path / "exit_logits.npz"), calibration)


def split_paths(paths: str | list[str | Path]) -> list[Path]:
    """Paths from a list or a comma-separated string (how papermill parameters carry them)."""
    if isinstance(paths, str):
        paths = [p.strip() for p in paths.split(",") if p.strip()]
    if not paths:
        raise DataError("no run directories given")
    return [Path(p) for p in paths]


def load_runs(paths: str | list[str | Path]) -> list[Run]:
    """Runs from a list of directories or a comma-separated string."""
    return [load_run(p) for p in split_paths(paths)]
