"""What an export records about its run, besides the graphs: the runtime policies the
model can use, the knob chosen on dev for each (with its scores) and the measured
speed-ups of the workflow's latency stage. Read by `early-exit export`
(`inference.onnx_export`) into export.json, operating_points.json and the model card
(`inference.model_card`); from either engine (`inference.engine.Engine`), no torch here.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from early_exit.exits.operating_points import point_rows
from early_exit.exits.policies import get_policy, runtime_names
from early_exit.support.tables import read_table


def runtime_policies(engine) -> list[str]:
    """The runtime policies this run (or export) can use on `engine`, either engine: a
    learned one needs the model's gate."""
    names = []
    for name in runtime_names():
        policy = get_policy(name)
        if engine.task_type in policy.task_types and (engine.gated or not policy.needs_scores):
            names.append(name)
    return names


def chosen_points(engine) -> dict[str, dict]:
    """Policy -> the knob `threshold="auto"` gives the torch engine, with its dev and test
    scores and where it was chosen (`exits.operating_points.point_rows`, the lookup the
    engine's `operating_point` makes too); a policy the run has no operating point for is
    left out."""
    rows, points = point_rows(engine.run_dir), {}
    for name in runtime_policies(engine):
        row = rows.get(name)
        if row is None:
            continue
        keys = ("metric", "dev_score", "dev_score_full", "test_score", "test_score_full",
                "test_speedup", "chosen_from")  # fmt: skip
        points[name] = {"knob": float(row["threshold"])} | {
            k: _plain(row[k]) for k in keys if k in row
        }
    return points


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def latency_rows(run_dir: Path) -> pd.DataFrame | None:
    """The run's latency table (the workflow's latency stage), or None without one."""
    path = run_dir / "latency.tsv"
    if not path.is_file():
        return None
    return read_table(path, "latency table", "rule latency", columns=("policy", "knob"))
