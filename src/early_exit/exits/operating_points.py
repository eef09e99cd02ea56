"""Operating points: the knob chosen on dev, reported on test (computed once, by one rule).

Protocol: for every run (task, method, seed) and policy, the knob value is chosen on
**dev** (the fastest whose dev score is within `max_drop` of the same model's
full-depth dev score, every example at the last exit; the best dev score when no knob
value comes that close) and the **test** numbers at that value are reported; seeds
are aggregated as mean and standard deviation. The workflow's `operating_points` rule
writes them to `results/analysis/operating_points.tsv` (`write_operating_points`);
the notebooks, the slides and the latency stage read that file
(`load_operating_points`) instead of choosing again.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from early_exit.analysis.tables import read_table
from early_exit.errors import DataError
from early_exit.workflow.atomic import write_text

KEYS = ["task", "method", "seed", "policy"]


def method_roles(methods_json: str) -> tuple[dict, dict[str, str], list[str]]:
    """From the workflow's method description (JSON: method -> recipe, criterion, static):
    all of it, each method's criterion, and the static baselines."""
    info = json.loads(methods_json)
    criteria = {m: i["criterion"] for m, i in info.items() if i["criterion"]}
    static = [m for m, i in info.items() if i["static"]]
    return info, criteria, static


def load_sweeps(paths: list[str | Path]) -> pd.DataFrame:
    """Concatenate sweep tables, naming any missing, empty or older one."""
    frames = []
    for path in paths:
        frame = read_table(path, "sweep table", "the sweep stage")
        if "full_score" not in frame:
            raise DataError(f"{path}: no full_score column (an older sweep): rerun the sweep stage")
        frames.append(frame)
    if not frames:
        raise DataError("no sweep tables given")
    return pd.concat(frames, ignore_index=True)


def full_depth(split: pd.DataFrame) -> tuple[float, float]:
    """Score and FLOPs of the full model (every example at the last exit) on one split.

    Read from the sweep's `full_score` / `full_flops` columns, computed from the last
    exit's logits: a policy's own rows need not contain the full model (the oracle has
    one row; a patience grid without t = E-1 never reaches the last exit for all).
    """
    return float(split.full_score.iloc[0]), float(split.full_flops.iloc[0])


def _choose(dev: pd.DataFrame, max_drop: float) -> int:
    """Position of the fastest knob value whose dev score is within max_drop of the full model's."""
    ok = dev[dev.score >= full_depth(dev)[0] - max_drop]
    if ok.empty:  # no knob value comes close (a grid without the full model): the best one
        ok = dev[dev.score == dev.score.max()]
    fastest = ok[ok.speedup == ok.speedup.max()]
    return int(fastest.score.idxmax())


def operating_points(sweeps: pd.DataFrame, max_drop: float) -> pd.DataFrame:
    """One row per (task, method, seed, policy, test split): the knob chosen on dev,
    measured on that test split (most tasks have one, `test`; MNLI also has
    `test_mismatched`, reported apart). Dev and test rows share the knob grid, row for row.
    """
    rows = []
    for key, run in sweeps.groupby(KEYS, sort=True):
        dev = run[run.split == "dev"].reset_index(drop=True)
        chosen = _choose(dev, max_drop)
        for test_split in sorted(s for s in run.split.unique() if s.startswith("test")):
            test = run[run.split == test_split].reset_index(drop=True)
            if not np.array_equal(dev.threshold, test.threshold, equal_nan=True):
                raise DataError(f"{key}: dev and {test_split} sweeps use different knob grids")
            full_score, full_flops = full_depth(test)
            rows.append(
                dict(zip(KEYS, key, strict=True))
                | {
                    "test_split": test_split,
                    "metric": dev.metric[chosen],
                    "threshold": dev.threshold[chosen],
                    "dev_score": dev.score[chosen],
                    "dev_score_full": full_depth(dev)[0],
                    "dev_speedup": dev.speedup[chosen],
                    "test_score_full": full_score,
                    "test_score": test.score[chosen],
                    "test_speedup": test.speedup[chosen],
                    "test_flops": test.avg_flops[chosen],
                    "test_flops_full": full_flops,
                }
            )
    return pd.DataFrame(rows)


def write_operating_points(sweep_paths: list[str | Path], max_drop: float, out: Path) -> None:
    """The workflow's `operating_points` rule: every run's operating points, one TSV."""
    points = operating_points(load_sweeps(sweep_paths), max_drop)
    write_text(out, points.to_csv(sep="\t", index=False))


def load_operating_points(path: str | Path) -> pd.DataFrame:
    """Read `operating_points.tsv`, naming a missing or empty file."""
    return read_table(path, "operating points table", "rule operating_points")


def chosen_knob(points: pd.DataFrame, task: str, method: str, seed: int, policy: str):
    """The knob chosen on dev for one run and policy (on the `test` split's row), or None."""
    row = points[
        (points.task.astype(str) == str(task))
        & (points.method.astype(str) == str(method))
        & (points.seed.astype(str) == str(seed))
        & (points.policy == policy)
        & (points.test_split == "test")
    ]
    return float(row.threshold.iloc[0]) if len(row) else None


def summary_table(points: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds of each (method, policy) operating point."""
    cols = ["test_score_full", "test_score", "test_speedup", "test_flops", "threshold"]
    grouped = points.groupby(["task", "method", "policy", "metric", "test_split"], sort=True)
    table = grouped[cols].agg(["mean", "std"])
    table.columns = [f"{c}_{stat}" for c, stat in table.columns]
    table["seeds"] = grouped.size()
    return table.reset_index()


def select_criteria(
    frame: pd.DataFrame, criteria: dict[str, str], include_oracle: bool = True
) -> pd.DataFrame:
    """Rows of each method under its own criterion (its paper's policy), plus the oracle."""
    wanted = frame.policy == frame.method.map(criteria).fillna("single-exit")
    if include_oracle:
        wanted |= frame.policy == "oracle"
    return frame[wanted]


def mean_std(mean: float, std: float, scale: float = 1.0, digits: int = 1) -> str:
    """`mean ± std` scaled (std NaN: one seed, the mean alone; mean NaN: a dash)."""
    if pd.isna(mean):
        return "–"
    text = f"{mean * scale:.{digits}f}"
    return text if pd.isna(std) else f"{text} ± {std * scale:.{digits}f}"


def _column(
    summary: pd.DataFrame, name: str, scale: float = 1.0, digits: int = 1, suffix: str = ""
) -> list[str]:
    pairs = zip(summary[f"{name}_mean"], summary[f"{name}_std"], strict=True)
    return [mean_std(m, s, scale, digits) + (suffix if not pd.isna(m) else "") for m, s in pairs]


def results_markdown(summary: pd.DataFrame, max_drop: float, title: str) -> str:
    """A results table as markdown with a heading (it becomes a slide as is)."""
    knob = ["–" if pd.isna(t) else f"{t:.3g}" for t in summary.threshold_mean]
    columns = {"Method": summary.method, "Policy": summary.policy}
    if summary.test_split.nunique() > 1:  # e.g. MNLI matched and mismatched, kept apart
        columns["Split"] = summary.test_split
    rows = pd.DataFrame(
        columns
        | {
            f"Full model ({summary.metric.iloc[0]})": _column(summary, "test_score_full", 100),
            "Early exit": _column(summary, "test_score", 100),
            "Speed-up": _column(summary, "test_speedup", digits=2, suffix="×"),
            "GFLOPs/example": _column(summary, "test_flops", 1e-9, digits=2),
            "Knob": knob,
            "Seeds": summary.seeds,
        }
    )
    note = (
        f"Test split. Knob (threshold or patience) chosen on dev: the fastest whose dev score "
        f"is within {max_drop * 100:g} percentage points of the same model's full-model score; "
        f"scores ×100, mean ± std over seeds."
    )
    return f"# {title}\n\n{rows.to_markdown(index=False)}\n\n{note}\n"


def write_markdown(path: str | Path, text: str) -> None:
    write_text(path, text)
