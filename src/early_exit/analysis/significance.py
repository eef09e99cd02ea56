"""Tests that hold their level: a small family of comparisons fixed in advance, an exact
test at the chosen knobs for each, and Holm's correction over the family of a task.

The family (per task and test split; docs/statistics.md, and every table's note): each
early-exit method (a non-static method, under its own criterion, at the knob chosen on
dev) against
- its own full model (the same run, every example at the last exit): the **drop**,
  own full model minus early exit, on score;
- plain fine-tuning of the same backbone: early exit minus fine-tuning
  (**vs fine-tuning**), on score and on cost (FLOPs per example, which varies there);
- the static curve of its reference backbone at the same FLOPs (**vs static curve**),
  early exit minus the curve interpolated between the two static models around it, on
  score (the cost is the same by construction).

The deciding test is exact at the chosen knobs (conditional on them):
- McNemar's exact test (statsmodels) for accuracy between two single runs;
- otherwise, when the quantity is a mean over examples (accuracy over several seeds or
  against the interpolated curve, FLOPs), a sign-flip permutation test of the paired
  per-example differences (`scipy.stats.permutation_test`: every sign pattern when
  there are at most `PERMUTATIONS`, else that many random ones, with scipy's
  (k + 1) / (B + 1) p-value, which keeps the level);
- for a metric that is not a mean over examples (F1, MCC, correlations) between two single
  runs, a paired permutation test swapping the two runs' predictions per example, the
  statistic being the metric difference;
- only a non-mean metric against the interpolated curve, or with several seeds, has no
  exact test here: its row says `bootstrap z` and uses the bootstrap standard error.

Holm's step-down correction (`statsmodels.stats.multitest.multipletests`) runs over the
family of a task and test split; `significant` is `p_adjusted < 1 - confidence`. The
intervals are the paired bootstrap's (`analysis.bootstrap`), not adjusted.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from early_exit.analysis.bootstrap import p_value
from early_exit.analysis.elue import curve_methods
from early_exit.analysis.intervals import (
    Task,
    combined_interval,
    drop_interval,
    interp_rows,
    task_vs_finetune_interval,
)
from early_exit.exits.metrics import score_rows

PERMUTATIONS = 9999  # random sign patterns when exact enumeration is too large
# the comparisons of the family, as named in every table (docs/statistics.md)
COMPARISONS = {
    "drop": "own full model − early exit",
    "vs fine-tuning": "early exit − plain fine-tuning of the same backbone",
    "vs static curve": "early exit − static curve at the same FLOPs",
}
COLUMNS = [
    "task",
    "test_split",
    "family",
    "family_size",
    "method",
    "policy",
    "comparison",
    "quantity",
    "against",
    "seeds",
    "value",
    "value_lo",
    "value_hi",
    "test",
    "p_value",
    "p_adjusted",
    "significant",
]


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment (statsmodels' `multipletests`); NaN entries are not
    tested and stay NaN."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    tested = ~np.isnan(p)
    if tested.any():
        adjusted[tested] = multipletests(p[tested], method="holm")[1]
    return adjusted


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Exact McNemar test of paired correctness (statsmodels): a binomial test on the
    examples only one of the two gets right."""
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    table = [[int((a & b).sum()), int((a & ~b).sum())], [int((~a & b).sum()), int((~a & ~b).sum())]]
    if table[0][1] + table[1][0] == 0:
        return 1.0
    return float(sm_mcnemar(table, exact=True).pvalue)


def _rng(*names) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32("\0".join(map(str, names)).encode()))


def sign_flip(differences: np.ndarray, *names) -> float:
    """Two-sided sign-flip permutation test of paired per-example differences having mean
    0 (symmetric about 0 under the null); deterministic for the same `names`."""
    from scipy.stats import permutation_test

    d = np.asarray(differences, dtype=float)
    d = d[d != 0]  # a zero difference is the same under either sign
    if d.size < 2:  # one difference: both signs are as extreme, p = 1
        return 1.0
    result = permutation_test(
        (d,),
        lambda x, axis: np.mean(x, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=PERMUTATIONS,
        rng=_rng("sign-flip", *names),
    )
    return float(min(1.0, result.pvalue))


def paired_permutation(
    metric: str, labels, preds_a, preds_b, *names, resamples: int = 999
) -> float:
    """Two-sided paired permutation test of metric(a) - metric(b): each example's two
    predictions are swapped at random (the null: the two runs are exchangeable)."""
    from scipy.stats import permutation_test

    labels, preds_a, preds_b = map(np.asarray, (labels, preds_a, preds_b))
    if np.array_equal(preds_a, preds_b):
        return 1.0
    n = len(labels)
    both = np.stack([preds_a, preds_b])  # [2, n]

    def statistic(x, y, axis):  # x, y: which run answers each example (0 = a, 1 = b)
        x, y = np.atleast_2d(x), np.atleast_2d(y)
        rows = np.arange(n)
        a = np.stack([both[r, rows] for r in x])
        b = np.stack([both[r, rows] for r in y])
        return score_rows(metric, labels, a) - score_rows(metric, labels, b)

    result = permutation_test(
        (np.zeros(n, dtype=int), np.ones(n, dtype=int)),
        statistic,
        permutation_type="samples",
        vectorized=True,
        n_resamples=resamples,  # the metric is computed per resample: fewer than sign flips
        rng=_rng("paired", *names),
    )
    return float(min(1.0, result.pvalue))


def significance_rows(task: Task) -> pd.DataFrame:
    """The family of every test split of the task, one row per comparison: its value and
    paired bootstrap interval, the test, its p-value and Holm's adjusted p-value over
    the family."""
    frames = []
    for split in sorted({s for (_, _, s) in task.groups}):
        rows = []
        for method in sorted({m for (m, _, s) in task.groups if s == split}):
            policy = task.own(method)
            if task.info.get(method, {}).get("static", True) or policy is None:
                continue
            if (method, policy, split) in task.groups:
                rows.extend(_comparisons(task, method, policy, split))
        if not rows:  # a task without an early-exit method has no family
            continue
        frame = pd.DataFrame(rows)
        frame.insert(2, "family", f"{task.task} · {split}")
        frame.insert(3, "family_size", int(frame.p_value.notna().sum()))
        frame["p_adjusted"] = holm(frame.p_value)
        frame["significant"] = frame.p_adjusted < 1 - task.settings.confidence
        frames.append(frame)
    return (
        pd.concat(frames, ignore_index=True)[COLUMNS] if frames else pd.DataFrame(columns=COLUMNS)
    )


def _seed_runs(task: Task, method: str, policy: str, split: str):
    """(runs, tests at split, chosen knob per run) of a seed group."""
    runs = task.groups[(method, policy, split)]
    return runs, [r.tests[split] for r in runs], [r.chosen for r in runs]


def _row(
    task, split, method, policy, comparison, quantity, against, seeds, value, reps, test, terms
):
    lo, hi = combined_interval(value, reps, terms, task.settings.confidence)
    name, p = test
    return {
        "task": task.task,
        "test_split": split,
        "method": method,
        "policy": policy,
        "comparison": comparison,
        "quantity": quantity,
        "against": against,
        "seeds": seeds,
        "value": value,
        "value_lo": lo,
        "value_hi": hi,
        "test": name,
        "p_value": p,
    }


def _score_test(metric, labels, a_preds, b_preds, weights_b, value, reps, names) -> tuple:
    """The exact test of score(a) - score(b): `a_preds` [S_a, n] (seeds), `b_preds` a list
    of [S, n] prediction arrays mixed with `weights_b` (the curve's interpolation; one
    model: one array, weight 1)."""
    single = len(a_preds) == 1 and len(b_preds) == 1 and len(b_preds[0]) == 1
    if metric == "accuracy":
        ca = (a_preds == labels).mean(0)
        cb = sum(w * (p == labels).mean(0) for w, p in zip(weights_b, b_preds, strict=True))
        if single:
            return "McNemar exact", mcnemar(a_preds[0] == labels, b_preds[0][0] == labels)
        return "sign-flip permutation", sign_flip(ca - cb, *names)
    if single:
        return "paired permutation", paired_permutation(
            metric, labels, a_preds[0], b_preds[0][0], *names
        )
    return "bootstrap z", p_value(value, reps)


def _comparisons(task: Task, method: str, policy: str, split: str) -> list[dict]:
    point = task.point(method, policy, split)
    runs, tests, chosen = _seed_runs(task, method, policy, split)
    labels, metric = tests[0].labels, runs[0].metric
    preds = np.stack([t.preds[k] for t, k in zip(tests, chosen, strict=True)])
    spent = np.stack([t.spent[k] for t, k in zip(tests, chosen, strict=True)]).mean(0)
    seeds = len(runs)
    names = (task.task, split, method, policy)
    common = (task, split, method, policy)
    rows = []

    # drop: own full model - early exit, on the same runs
    full = np.stack([t.full_preds for t in tests])
    value = float(np.mean([t.full_score - t.score[k] for t, k in zip(tests, chosen, strict=True)]))
    reps = point["reps"]["drop"]
    test = _score_test(metric, labels, full, [preds], [1.0], value, reps, (*names, "drop"))
    terms = point["between"]["drop"]
    row = _row(*common, "drop", "score", "own full model", seeds, value, reps, test, terms)
    if seeds == 1 and (exact := drop_interval(runs[0], split, task.settings)) is not None:
        row["value_lo"], row["value_hi"] = exact
    rows.append(row)

    # vs fine-tuning: early exit - plain fine-tuning of the backbone, score and FLOPs
    base_name = task.finetune(method)
    if base_name and (base_name, "single-exit", split) in task.groups:
        base = task.point(base_name, "single-exit", split)
        _, b_tests, b_chosen = _seed_runs(task, base_name, "single-exit", split)
        b_preds = np.stack([t.preds[k] for t, k in zip(b_tests, b_chosen, strict=True)])
        b_spent = np.stack([t.spent[k] for t, k in zip(b_tests, b_chosen, strict=True)]).mean(0)
        value = float(point["value"]["score"] - base["value"]["score"])
        reps = point["reps"]["score"] - base["reps"]["score"]
        nm = (*names, "finetune", "score")
        test = _score_test(metric, labels, preds, [b_preds], [1.0], value, reps, nm)
        terms = point["between"]["score"] + base["between"]["score"]
        row = _row(*common, "vs fine-tuning", "score", base_name, seeds, value, reps, test, terms)
        if (exact := task_vs_finetune_interval(task, method, policy, split)) is not None:
            row["value_lo"], row["value_hi"] = exact  # as the summary's vs_finetune interval
        rows.append(row)
        value = float(point["value"]["flops"] - base["value"]["flops"])
        reps = point["reps"]["flops"] - base["reps"]["flops"]
        test = ("sign-flip permutation", sign_flip(spent - b_spent, *names, "finetune", "flops"))
        terms = point["between"]["flops"] + base["between"]["flops"]
        rows.append(
            _row(*common, "vs fine-tuning", "flops", base_name, seeds, value, reps, test, terms)
        )

    # vs static curve: early exit - the curve at the same FLOPs, score
    reference = task.info.get(method, {}).get("reference")
    curve = _curve_models(task, reference, split) if reference else None
    if curve is not None:
        flops_x, score_y, members, (rep_x, rep_f) = curve
        at = float(point["value"]["flops"])
        value = float(point["value"]["score"] - np.interp(at, flops_x, score_y))
        reps = point["reps"]["score"] - interp_rows(point["reps"]["flops"], rep_x, rep_f)
        weights, models = _bracket(at, flops_x, members)
        nm = (*names, "curve")
        test = _score_test(metric, labels, preds, models, weights, value, reps, nm)
        terms = point["between"]["score"] + task.curve_between(reference, split, at)
        if task.on_curve(method, reference):
            terms = []
        against = f"static curve ({reference})"
        rows.append(
            _row(*common, "vs static curve", "score", against, seeds, value, reps, test, terms)
        )
    return rows


def _curve_models(task: Task, backbone: str, split: str):
    """The static curve (`Task.curve`) with each point's predictions per seed [S, n], in
    the curve's FLOPs order."""
    found = task.curve(backbone, split)
    if found is None:
        return None
    (xp, fp), reps = found
    members = []
    for m in curve_methods(task.info).get(backbone, []):
        if (m, "single-exit", split) not in task.groups:
            continue
        _, tests, chosen = _seed_runs(task, m, "single-exit", split)
        flops = np.mean([t.flops[k] for t, k in zip(tests, chosen, strict=True)])
        members.append((flops, np.stack([t.preds[k] for t, k in zip(tests, chosen, strict=True)])))
    members.sort(key=lambda fm: fm[0])
    return xp, fp, [p for _, p in members], reps


def _bracket(at: float, flops: np.ndarray, members: list) -> tuple[list[float], list]:
    """np.interp's weights at `at`: the two static models around it (one at either end)."""
    if at <= flops[0]:
        return [1.0], [members[0]]
    if at >= flops[-1]:
        return [1.0], [members[-1]]
    hi = int(np.searchsorted(flops, at, side="right"))
    w = (at - flops[hi - 1]) / (flops[hi] - flops[hi - 1])
    return [1 - w, w], [members[hi - 1], members[hi]]
