"""The ELUE score (Liu et al., NAACL 2022): performance relative to a static reference curve.

The reference is ONE backbone truncated to k = 1..L layers and fine-tuned separately
(ElasticBERT-base in the paper): the (FLOPs, score) points of the `static` recipe's
models on that backbone, joined into a piecewise-linear curve p_ref(f). A method
submitting n (FLOPs, score) points scores

    ELUE = (1/n) * sum_i [p_i - p_ref(f_i)]        (in points, scores x 100)

so the reference itself scores 0 and a method above the curve scores > 0.

Which curve: the workflow gives every method a `reference` backbone (see
`early_exit.config.check.method_info`): the config's `analysis.elue_reference`
(the one backbone of the static baselines when not set), or, with
`analysis.elue_per_backbone`, the method's own backbone when it has a static curve.
Single-exit baselines that are not `static` models (plain fine-tuning of BERT,
RoBERTa, ALBERT...) are scored against that curve like any method, never part of it:
mixing backbones in one curve would make `np.interp` run over near-duplicate x
values with different scores.

Outside the curve's FLOPs range the paper does not say what happens. Here the curve
is extended flat (np.interp): a point cheaper than the 1-layer model is compared
with the 1-layer model's score, one dearer than the deepest static model with its
score. Flat extension never credits a method for an extrapolated slope; the number
of points outside the range is reported next to each score.

The leaderboard's average covers the six ELUE tasks only and is "–" when one is
missing (ANCHORS 3.4); other tasks keep their own columns and enter no average.

A method's points are its sweep on the test split under one policy, averaged over
seeds per knob value, with duplicate (FLOPs, score) points counted once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# The ELUE tasks by their task keys (config/paper.yaml), in the leaderboard's column order.
ELUE_TASKS = ("sst2", "imdb", "mrpc", "stsb", "snli", "scitail")
AVERAGE = "ELUE average"
COLUMNS = ["task", "method", "policy", "reference", "elue", "points", "outside_range"]


def curve_methods(info: dict) -> dict[str, list[str]]:
    """Per backbone: the methods that are points of its static reference curve."""
    curves: dict[str, list[str]] = {}
    for method, i in info.items():
        if i.get("curve"):
            curves.setdefault(i["backbone"], []).append(method)
    return curves


def used_curves(info: dict) -> dict[str, list[str]]:
    """The curves some method is scored against (what the figures draw), by backbone."""
    used = {i.get("reference") for i in info.values()}
    return {b: methods for b, methods in curve_methods(info).items() if b in used}


def reference_curve(static: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(FLOPs, score) of the static models sorted by FLOPs, averaged over seeds."""
    mean = static.groupby("method")[["avg_flops", "score"]].mean().sort_values("avg_flops")
    return mean.avg_flops.to_numpy(), mean.score.to_numpy()


def elue_score(
    flops: np.ndarray, scores: np.ndarray, curve: tuple[np.ndarray, np.ndarray]
) -> tuple[float, int]:
    """Mean vertical distance (x100) of points to the curve, and how many lie outside it."""
    ref_flops, ref_scores = curve
    gap = np.asarray(scores) - np.interp(flops, ref_flops, ref_scores)
    outside = int(((flops < ref_flops[0]) | (flops > ref_flops[-1])).sum())
    return float(100 * gap.mean()), outside


def method_points(sweeps: pd.DataFrame) -> pd.DataFrame:
    """Distinct test-set (FLOPs, score) points of one method and policy, averaged over seeds."""
    test = sweeps[sweeps.split == "test"]
    mean = test.groupby("threshold", dropna=False)[["avg_flops", "score"]].mean()
    # duplicates found on rounded values, the values themselves kept: a static model's
    # own point then lies exactly on the curve's end, not 0.4 FLOPs outside it
    return mean[~mean.round({"avg_flops": 0, "score": 9}).duplicated()]


def _task_curves(per_task: pd.DataFrame, curves: dict[str, list[str]]) -> dict[str, tuple]:
    """The curves (by backbone) this task has: at least two static models on test."""
    found = {}
    for backbone, methods in curves.items():
        static = per_task[per_task.method.isin(methods) & (per_task.split == "test")]
        if static.method.nunique() >= 2:
            found[backbone] = reference_curve(static)
    return found


def elue_table(sweeps: pd.DataFrame, info: dict) -> pd.DataFrame:
    """ELUE score of every (task, method, policy) against the curve of its `reference`
    backbone (`info`: the workflow's method description). Methods without a reference,
    or on a task where that curve has fewer than two points, get no row."""
    curves = curve_methods(info)
    rows = []
    for task, per_task in sweeps.groupby("task"):
        task_curves = _task_curves(per_task, curves)
        for (method, policy), run in per_task.groupby(["method", "policy"]):
            reference = info.get(method, {}).get("reference")
            if reference not in task_curves:
                continue
            points = method_points(run)
            score, outside = elue_score(
                points.avg_flops.to_numpy(), points.score.to_numpy(), task_curves[reference]
            )
            rows.append(
                {
                    "task": task,
                    "method": method,
                    "policy": policy,
                    "reference": reference,
                    "elue": score,
                    "points": len(points),
                    "outside_range": outside,
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def elue_wide(table: pd.DataFrame) -> pd.DataFrame:
    """Methods as rows; the ELUE tasks present, their average ("–" when one of the six
    is missing for a method), then every other task in its own column."""
    wide = table.pivot_table(
        index=["method", "policy", "reference"], columns="task", values="elue"
    ).reindex(columns=sorted(table.task.unique()))
    elue_cols = [t for t in ELUE_TASKS if t in wide.columns]
    other = [t for t in wide.columns if t not in ELUE_TASKS]
    if elue_cols:
        full = wide.reindex(columns=list(ELUE_TASKS))
        wide[AVERAGE] = full.mean(axis=1, skipna=False)  # NaN unless all six are there
        wide = wide[[*elue_cols, AVERAGE, *other]]
    wide.columns.name = None
    return wide.reset_index()


def _fmt(value) -> str:
    return "–" if pd.isna(value) else f"{round(float(value), 2) + 0.0:.2f}"  # no -0.00


def _cells(table: pd.DataFrame, wide: pd.DataFrame, task: str) -> pd.Series:
    """A task's column as text: the score with its interval when the table has one."""
    if "elue_lo" not in table:
        return wide[task].map(_fmt)
    keys = ["method", "policy", "reference"]
    rows = table[table.task == task].set_index(keys)
    lookup = wide.set_index(keys).index
    lo = rows.elue_lo.reindex(lookup).to_numpy()
    hi = rows.elue_hi.reindex(lookup).to_numpy()
    text = [
        _fmt(v) if pd.isna(v) or pd.isna(a) else f"{_fmt(v)} [{_fmt(a)}, {_fmt(b)}]"
        for v, a, b in zip(wide[task], lo, hi, strict=True)
    ]
    return pd.Series(text, index=wide.index)


def elue_markdown(table: pd.DataFrame, title: str, coverage: str | None = None) -> str:
    """Methods as rows, tasks as columns, the ELUE average as on the leaderboard; with
    `elue_lo` / `elue_hi` columns (`intervals.elue_rows`) each task's score carries its
    interval (`coverage` says what it covers)."""
    wide = elue_wide(table)
    scored = [c for c in wide.columns if c not in ("method", "policy", "reference")]
    tasks = set(table.task.unique())
    shown = wide.assign(
        **{c: _cells(table, wide, c) if c in tasks else wide[c].map(_fmt) for c in scored}
    ).rename(columns={"method": "Method", "policy": "Policy", "reference": "Curve"})
    text = shown.to_markdown(index=False, disable_numparse=True)
    present = [t for t in ELUE_TASKS if t in table.task.unique()]
    if present:
        average = (
            f"{AVERAGE}: mean over the six ELUE tasks ({', '.join(ELUE_TASKS)}), "
            "'–' when one is missing; other tasks are not averaged."
        )
    else:
        average = (
            f"No ELUE task here ({', '.join(ELUE_TASKS)}), so no ELUE average; "
            "each task is scored on its own."
        )
    note = (
        "ELUE score: mean gap (points ×100) between a method's test (FLOPs, score) "
        "points and the piecewise-linear curve of the static baselines of the backbone "
        "named under Curve; 0 = on the curve. The curve is extended flat outside its "
        f"FLOPs range. {average}"
    )
    if coverage and "elue_lo" in table:
        note += f" [interval]: {coverage}; the average carries none."
    return f"# {title}\n\n{text}\n\n{note}\n"
