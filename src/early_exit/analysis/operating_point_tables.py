"""The workflow's `operating_points` rule: the knobs chosen on dev, and every reported
number's interval, in one pass over the stored outputs.

The point estimates are `exits.operating_points` on the sweep tables, unchanged; the
replicates (`analysis.bootstrap`) re-derive each run's numbers from its stored
outputs, and a run whose knob chosen there differs from its sweep's (a sweep older
than its outputs) is an error rather than an interval around another model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from early_exit.analysis.bootstrap import RunReplicates, Settings, run_replicates
from early_exit.analysis.intervals import Task, elue_rows, run_rows, summary_rows
from early_exit.analysis.significance import significance_rows
from early_exit.exits.operating_points import KEYS, Guarantee, load_sweeps, operating_points
from early_exit.support.errors import DataError
from early_exit.support.layout import parse_run_dir
from early_exit.support.tables import write_table


def task_replicates(
    run_dirs: list[Path],
    policies: dict[str, dict],
    settings: Settings,
    max_drop: float,
    guarantee: Guarantee | None = None,
) -> dict[str, list[RunReplicates]]:
    """Every run's replicates, by task; runs of a task aligned on the first one's examples."""
    by_task: dict[str, list[RunReplicates]] = {}
    orders: dict[str, dict] = {}
    for run_dir in run_dirs:
        key = parse_run_dir(run_dir)
        task = key[0]
        reps, orders[task] = run_replicates(
            run_dir, key, policies[task], settings, max_drop, orders.get(task), guarantee
        )
        by_task.setdefault(task, []).extend(reps)
    return by_task


def _check_knobs(points: pd.DataFrame, runs: list[RunReplicates], run_dirs: list[Path]) -> None:
    """The knob chosen from the stored outputs must be the sweep's."""
    chosen = {r.key: r.grid[r.chosen] for r in runs}
    for row in points[points.test_split == "test"].itertuples():
        key = (row.task, row.method, int(row.seed), row.policy)
        knob = chosen.get(key)
        same = knob is not None and (
            (np.isnan(knob) and np.isnan(row.threshold)) or np.isclose(knob, row.threshold)
        )
        if not same:
            where = next((d for d in run_dirs if parse_run_dir(d)[:3] == key[:3]), key)
            raise DataError(
                f"{where}: the knob chosen on its stored outputs ({knob}) is not its sweep's "
                f"({row.threshold}) under {row.policy}; the sweep is older than the outputs: "
                "rerun rule sweep"
            )


def uncertainty_tables(
    sweep_paths: list[str | Path],
    policies: dict[str, dict],
    settings: Settings,
    max_drop: float,
    info: dict,
    guarantee: Guarantee | None = None,
) -> dict[str, pd.DataFrame]:
    """Operating points with interval columns (and, with a `guarantee`, the
    Learn-then-Test knob's `ltt_*` columns after them), the over-seeds summary, ELUE
    intervals and the family of tests (each run directory is its sweep table's folder)."""
    run_dirs = [Path(p).parent for p in sweep_paths]
    points = operating_points(load_sweeps(sweep_paths), max_drop)
    by_task = task_replicates(run_dirs, policies, settings, max_drop, guarantee)
    _check_knobs(points, [r for runs in by_task.values() for r in runs], run_dirs)
    per_run, summary, elue, significance = [], [], [], []
    for runs in by_task.values():
        per_run.append(run_rows(runs, settings, guarantee))
        task = Task(runs, settings, info)
        summary.append(summary_rows(task))
        elue.append(elue_rows(task))
        significance.append(significance_rows(task))
    per_run = pd.concat(per_run, ignore_index=True)
    per_run["seed"] = per_run.seed.astype(points.seed.dtype)
    return {
        "points": points.merge(per_run, on=[*KEYS, "test_split"], how="left", validate="1:1"),
        "summary": pd.concat(summary, ignore_index=True),
        "elue": pd.concat(elue, ignore_index=True),
        "significance": pd.concat(significance, ignore_index=True),
    }


def write_uncertainty(
    sweep_paths: list[str | Path],
    policies: dict[str, dict],
    settings: Settings,
    max_drop: float,
    info: dict,
    outputs: dict[str, str | Path],
    guarantee: Guarantee | None = None,
) -> None:
    """Write each table of `uncertainty_tables` to `outputs[name]` (TSV, atomically)."""
    tables = uncertainty_tables(sweep_paths, policies, settings, max_drop, info, guarantee)
    for name, path in outputs.items():
        write_table(tables[name], path)
