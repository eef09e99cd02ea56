"""The results layout: where the workflow puts each run's files, in one place.

    results/{task}/{method}/seed{seed}/          a run (model/, exit_logits.npz, sweep.tsv, ...)
    results/analysis/operating_points.tsv        the knobs chosen on dev, every run
    data/{task}/manifest.json                    the task's prepared data

The rules' output patterns spell the same paths (Snakemake needs them literally);
functions that need a run's place (the engine, the latency stage, the rules' input
functions) ask this module instead of counting parent directories.
"""

from __future__ import annotations

import re
from pathlib import Path

from early_exit.support.errors import DataError

RESULTS = "results"
SEED_DIR = re.compile(r"seed(\d+)")
OPERATING_POINTS = Path("analysis") / "operating_points.tsv"


def run_dir(task: str, method: str, seed: int | str) -> str:
    """Where one run's files live: `results/{task}/{method}/seed{seed}`."""
    return f"{RESULTS}/{task}/{method}/seed{seed}"


def parse_run_dir(path: str | Path) -> tuple[str, str, int]:
    """(task, method, seed) of `.../{task}/{method}/seed{seed}`."""
    parts = Path(path).parts
    match = SEED_DIR.fullmatch(parts[-1]) if len(parts) >= 3 else None
    if not match:
        raise DataError(f"{path}: not a run directory (expected .../<task>/<method>/seed<N>)")
    return parts[-3], parts[-2], int(match.group(1))


def results_root(run: str | Path) -> Path:
    """The results directory a run directory sits in (`results/` of `results/t/m/seedN`)."""
    parse_run_dir(Path(run).resolve())
    return Path(run).resolve().parents[2]


def operating_points_file(run: str | Path) -> Path:
    """The workflow's operating-points table beside a run directory."""
    return results_root(run) / OPERATING_POINTS


def data_dir(run: str | Path) -> Path:
    """The prepared data of a run's task (`data/{task}` beside `results/`)."""
    return results_root(run).parent / "data" / parse_run_dir(Path(run).resolve())[0]


def manifest_file(run: str | Path, task: str) -> Path:
    """The prepared data's manifest of the workspace a run directory sits in
    (`data/` beside `results/`)."""
    return results_root(run).parent / "data" / task / "manifest.json"
