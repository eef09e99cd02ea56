"""The ELUE score (Liu et al., NAACL 2022): performance relative to a static reference curve.

The reference is the backbone truncated to k = 1..L layers and fine-tuned separately
(ElasticBERT-base in the paper; here the configured backbone's static baselines):
their (FLOPs, score) points joined into a piecewise-linear curve p_ref(f). A method
submitting n (FLOPs, score) points scores

    ELUE = (1/n) * sum_i [p_i - p_ref(f_i)]        (in points, scores x 100)

so the reference itself scores 0 and a method above the curve scores > 0.

Outside the curve's FLOPs range the paper does not say what happens. Here the curve
is extended flat (np.interp): a point cheaper than the 1-layer model is compared
with the 1-layer model's score, one dearer than the full model with the full
model's score. Flat extension never credits a method for an extrapolated slope;
the number of points outside the range is reported next to each score.

A method's points are its sweep on the test split under one policy, averaged over
seeds per knob value, with duplicate (FLOPs, score) points counted once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


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
    return mean.round({"avg_flops": 0, "score": 9}).drop_duplicates()


def elue_table(sweeps: pd.DataFrame, static_methods: list[str]) -> pd.DataFrame:
    """ELUE score of every (task, method, policy) against its task's static curve."""
    rows = []
    for task, per_task in sweeps.groupby("task"):
        static = per_task[per_task.method.isin(static_methods) & (per_task.split == "test")]
        if static.method.nunique() < 2:
            continue  # no curve: needs at least two static models
        curve = reference_curve(static)
        for (method, policy), run in per_task.groupby(["method", "policy"]):
            points = method_points(run)
            score, outside = elue_score(points.avg_flops.to_numpy(), points.score.to_numpy(), curve)
            rows.append(
                {
                    "task": task,
                    "method": method,
                    "policy": policy,
                    "elue": score,
                    "points": len(points),
                    "outside_range": outside,
                }
            )
    return pd.DataFrame(
        rows, columns=["task", "method", "policy", "elue", "points", "outside_range"]
    )


def elue_markdown(table: pd.DataFrame, title: str) -> str:
    """Methods as rows, tasks as columns, with the average over tasks (as the leaderboard)."""
    wide = table.pivot_table(index=["method", "policy"], columns="task", values="elue")
    wide["Average"] = wide.mean(axis=1)
    wide = wide.round(2) + 0.0  # + 0.0 turns -0.00 into 0.00
    text = wide.reset_index().to_markdown(index=False, floatfmt=".2f")
    note = (
        "ELUE score: mean gap (points ×100) between a method's test (FLOPs, score) "
        "points and the piecewise-linear curve of the static baselines; 0 = on the "
        "curve. The curve is extended flat outside its FLOPs range."
    )
    return f"# {title}\n\n{text}\n\n{note}\n"
