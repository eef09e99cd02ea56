"""Significance between methods: every pair of a task's methods at their operating points.

Each method is taken under its own policy at the knob chosen on dev. The primary test
is the paired bootstrap of the score difference (the same resampled examples for both
methods; with `reselect_on_dev` the knob is re-chosen in every replicate, so the test
covers the noise of the choice): a z-test with the bootstrap standard error
(`bootstrap.p_value`), which decides `significant`. For classification, when each
method has one seed, the exact McNemar test on per-example correctness at the chosen
knobs is reported beside it (conditional on those knobs). Both are Holm-adjusted over the pairs of
a task and test split (family-wise error at 1 - confidence).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from early_exit.analysis.bootstrap import interval, p_value
from early_exit.analysis.intervals import Task


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment (family-wise error); NaN entries are not tested."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Exact McNemar test of paired correctness: a binomial test on the discordant pairs."""
    from scipy.stats import binomtest

    a_only = int((correct_a & ~correct_b).sum())
    b_only = int((~correct_a & correct_b).sum())
    if a_only + b_only == 0:
        return 1.0
    return float(binomtest(a_only, a_only + b_only, 0.5).pvalue)


COLUMNS = [
    "task",
    "test_split",
    "method_a",
    "policy_a",
    "method_b",
    "policy_b",
    "difference",
    "difference_lo",
    "difference_hi",
    "p_value",
    "p_mcnemar",
    "p_holm",
    "p_mcnemar_holm",
    "significant",
]


def significance_rows(task: Task) -> pd.DataFrame:
    """Every pair of methods of the task (each under its own policy, at its operating
    point): score difference A - B with its interval, the bootstrap p-value, and for
    classification with one seed each the exact McNemar p-value; both Holm-adjusted over
    the task's pairs."""
    rows = []
    splits = sorted({s for (_, _, s) in task.groups})
    for split in splits:
        chosen = {}
        for method in sorted({m for (m, _, s) in task.groups if s == split}):
            policy = task.own(method)
            if policy is not None and (method, policy, split) in task.groups:
                chosen[method] = policy
        block = []
        names = sorted(chosen)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                block.append(_pair(task, split, a, chosen[a], b, chosen[b]))
        if block:  # a task with one method has no pairs
            frame = pd.DataFrame(block)
            frame["p_holm"] = holm(frame.p_value)
            frame["p_mcnemar_holm"] = holm(frame.p_mcnemar)
            frame["significant"] = frame.p_holm < 1 - task.settings.confidence
            rows.append(frame)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=COLUMNS)


def _pair(task: Task, split: str, a: str, pa: str, b: str, pb: str) -> dict:
    x, y = task.point(a, pa, split), task.point(b, pb, split)
    value = x["value"]["score"] - y["value"]["score"]
    diff = x["reps"]["score"] - y["reps"]["score"]
    lo, hi = interval(diff, task.settings.confidence)
    mc = np.nan
    run_a, run_b = task.groups[(a, pa, split)], task.groups[(b, pb, split)]
    if len(run_a) == 1 and len(run_b) == 1:
        ca, cb = run_a[0].tests[split].correct, run_b[0].tests[split].correct
        if ca is not None and cb is not None:
            mc = mcnemar(ca[run_a[0].chosen], cb[run_b[0].chosen])
    return {
        "task": task.task,
        "test_split": split,
        "method_a": a,
        "policy_a": pa,
        "method_b": b,
        "policy_b": pb,
        "difference": value,
        "difference_lo": lo,
        "difference_hi": hi,
        "p_value": p_value(value, diff),
        "p_mcnemar": mc,
    }
