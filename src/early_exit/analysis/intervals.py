"""Intervals on every reported number, from the paired bootstrap replicates
(`early_exit.analysis.bootstrap`).

Tables written by the workflow's `operating_points` rule:
- per run (the operating-points table): the knob's test score, drop from the full
  model, layer speed-up and FLOPs, each with its interval;
- per method and policy over seeds (`intervals.tsv`): the same, and the difference
  from plain fine-tuning of the same backbone (**vs fine-tuning**, `vs_finetune`; the
  run named in `finetune`) and from the static curve at the same FLOPs (**vs static
  curve**, `vs_curve`), each with its interval (names as in docs/statistics.md: the
  **drop** is against the method's own full model, vs fine-tuning against another run);
- the ELUE score of every method and policy with its interval (`elue_intervals.tsv`).

Seeds: a method's numbers over seeds are the mean over its seeds. With one seed the
interval is the paired bootstrap's percentile interval: test sampling (and, with
`reselect_on_dev`, the choice of knob on dev) only. With several seeds it is a
t-interval around the seed mean (`combined_interval`): the variance of the mean is the
between-seed variance of the seeds' values over the number of seeds, plus the
within-seed variance (the bootstrap variance of the seed mean over the same resampled
examples), with Welch-Satterthwaite degrees of freedom. Drawing three seeds with
replacement (the two-level bootstrap this replaced) has only ten distinct multisets and
underestimates the between-seed variance by a factor (S - 1) / S, a third with three
seeds; the t quantile with S - 1 degrees of freedom also pays for estimating that
variance from S values. The tables' notes say which interval they show.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from early_exit.analysis.bootstrap import RunReplicates, Settings, interval
from early_exit.analysis.elue import curve_methods
from early_exit.analysis.roles import finetune_of
from early_exit.exits.operating_points import Guarantee

STATS = ("score", "drop", "speedup", "flops")


def between(values) -> list[tuple[float, int]]:
    """The between-seed variance term of a seed mean: [(s^2 / S, S - 1)], none for one
    seed."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if v.size < 2:
        return []
    spread = 0.0 if np.ptp(v) <= 1e-12 * max(1.0, np.abs(v).max()) else v.var(ddof=1)
    return [(float(spread / v.size), v.size - 1)]


def combined_interval(
    value: float, reps: np.ndarray, terms: list[tuple[float, int]], confidence: float
) -> tuple[float, float]:
    """The interval of a seed mean (or a difference of seed means): the bootstrap's
    percentile interval when no between-seed term is left (one seed, or seeds that agree
    exactly); else value ± t_df sqrt(within + sum of the terms), within being the
    variance of the bootstrap replicates `reps` and df by Welch-Satterthwaite (the
    within part counted as known: it rests on every resampled example)."""
    from scipy.stats import t

    terms = [(b, df) for b, df in terms if b > 0]
    if not terms or np.isnan(value):
        return interval(reps, confidence)
    r = np.asarray(reps, dtype=float)
    r = r[~np.isnan(r)]
    within = float(r.var(ddof=1)) if r.size > 1 else 0.0
    total = within + sum(b for b, _ in terms)
    df = total**2 / sum(b**2 / d for b, d in terms)
    half = float(t.ppf(0.5 + confidence / 2, df)) * np.sqrt(total)
    return float(value - half), float(value + half)


def coverage(seeds: int, settings: Settings) -> str:
    """What an interval covers, for a table's note."""
    knob = (
        " and the choice of knob on resampled dev (the protocol's mean)"
        if settings.reselect_on_dev
        else " at the knob chosen on dev"
    )
    pct = f"{settings.confidence * 100:g}%"
    boot = f"{settings.resamples} resamples, seed {settings.seed}"
    if seeds > 1:
        return (
            f"{pct} t-intervals over seed means covering training seeds (between-seed "
            f"variance) and test sampling{knob} (paired bootstrap, {boot})"
        )
    drop = "" if settings.reselect_on_dev else " (the drop, for accuracy: Agresti-Min's)"
    return (
        f"{pct} paired bootstrap percentile intervals ({boot}){drop} covering test sampling "
        f"only{knob}"
    )


def paired_difference_interval(
    a_correct: np.ndarray, b_correct: np.ndarray, confidence: float
) -> tuple[float, float]:
    """Agresti-Min interval of the difference of two paired proportions, mean(a) -
    mean(b): a Wald interval after adding 1/2 to each cell of the 2x2 table (Agresti and
    Min 2005). A percentile bootstrap of the drop, which rests on the few examples where
    the two disagree, covered 92% at nominal 95% on the default run's outputs; this, 96%
    (docs/statistics.md)."""
    from scipy.stats import norm

    a, b = np.asarray(a_correct, bool), np.asarray(b_correct, bool)
    n = a.size + 2
    only_a, only_b = (a & ~b).sum() + 0.5, (~a & b).sum() + 0.5
    d = (only_a - only_b) / n
    half = norm.ppf(0.5 + confidence / 2) * np.sqrt(
        ((only_a + only_b) - (only_a - only_b) ** 2 / n) / n**2
    )
    return float(d - half), float(d + half)


def _fixed_knob_accuracy(run: RunReplicates, split: str, settings: Settings) -> bool:
    """Whether a paired interval of proportions applies: accuracy, per-example answers,
    the knob fixed at the dev choice."""
    return (
        not settings.reselect_on_dev
        and run.metric == "accuracy"
        and run.tests[split].correct is not None
    )


def drop_interval(run: RunReplicates, split: str, settings: Settings) -> tuple[float, float] | None:
    """The drop's interval at a fixed knob for accuracy (`paired_difference_interval`
    of the run's own full model against its early exit); None where it does not apply
    (another metric, intervals that re-choose the knob, or a knob at which every example
    leaves at the last exit, the full model itself)."""
    t = run.tests[split]
    if not _fixed_knob_accuracy(run, split, settings):
        return None
    if np.array_equal(t.spent[run.chosen], t.full_spent):  # every example at the last exit:
        return None  # the full model itself, a drop of 0 by construction (the bootstrap's [0, 0])
    full = t.full_preds == t.labels
    return paired_difference_interval(full, t.correct[run.chosen], settings.confidence)


def vs_finetune_interval(
    run: RunReplicates, base: RunReplicates, split: str, settings: Settings
) -> tuple[float, float] | None:
    """The interval of vs fine-tuning at a fixed knob for accuracy, one seed each:
    `paired_difference_interval` of the early exit against plain fine-tuning on the same
    test examples (the percentile bootstrap covered 94.0% [87.5, 97.5] at nominal 95% on
    the default run's outputs, this 95.8% [92.5, 98.5]: docs/statistics.md); None where it
    does not apply (as `drop_interval`, or the two answer every example alike)."""
    t, b = run.tests[split], base.tests[split]
    if not _fixed_knob_accuracy(run, split, settings):
        return None
    if b.correct is None or not np.array_equal(t.labels, b.labels):
        return None
    early, tuned = t.correct[run.chosen], b.correct[base.chosen]
    if np.array_equal(early, tuned):  # fine-tuning itself: 0 by construction
        return None
    return paired_difference_interval(early, tuned, settings.confidence)


def task_vs_finetune_interval(
    task: Task, method: str, policy: str, split: str
) -> tuple[float, float] | None:
    """`vs_finetune_interval` for a method's seed group against its backbone's plain
    fine-tuning, where both are one run; None otherwise (the combined interval holds)."""
    base_name = task.finetune(method)
    runs = task.groups.get((method, policy, split), [])
    base = task.groups.get((base_name, "single-exit", split), []) if base_name else []
    if len(runs) != 1 or len(base) != 1:
        return None
    return vs_finetune_interval(runs[0], base[0], split, task.settings)


def run_rows(
    runs: list[RunReplicates], settings: Settings, guarantee: Guarantee | None = None
) -> pd.DataFrame:
    """Interval columns per run and test split: `test_<stat>_lo` / `_hi`, and the drop;
    with a `guarantee`, the Learn-then-Test knob's columns (`guaranteed_columns`)."""
    rows = []
    for run in runs:
        for split, t in run.tests.items():
            at = run.at_point(split)
            row = dict(zip(["task", "method", "seed", "policy"], run.key, strict=True))
            row |= {"test_split": split, "test_drop": t.full_score - t.score[run.chosen]}
            for stat in STATS:
                lo, hi = interval(at[stat], settings.confidence)
                row |= {f"test_{stat}_lo": lo, f"test_{stat}_hi": hi}
            if (exact := drop_interval(run, split, settings)) is not None:
                row["test_drop_lo"], row["test_drop_hi"] = exact
            row |= {
                "dev_knob_agreement": run.knob_agreement,
                "dev_knobs_rechosen": run.knobs_rechosen,
            }
            if guarantee is not None:
                row |= guaranteed_columns(run, split, guarantee)
            rows.append(row)
    return pd.DataFrame(rows)


LTT_COLUMNS = (
    "ltt_threshold",
    "ltt_certified",
    "ltt_dev_risk",
    "ltt_test_risk",
    "ltt_test_score",
    "ltt_test_drop",
    "ltt_test_speedup",
)


def guaranteed_columns(run: RunReplicates, split: str, guarantee: Guarantee) -> dict:
    """The Learn-then-Test knob's columns (`ltt_*`): its threshold chosen on dev, whether
    any knob was certified (if not, the full model: every example at the last exit), its
    dev risk, and on the test split its realised risk, score, drop and layer speed-up."""
    t, g = run.tests[split], run.guaranteed
    if g is None:
        return dict.fromkeys(LTT_COLUMNS, np.nan)
    if g < 0:
        return {
            "ltt_threshold": np.nan,
            "ltt_certified": False,
            "ltt_dev_risk": np.nan,
            "ltt_test_risk": 0.0,
            "ltt_test_score": t.full_score,
            "ltt_test_drop": 0.0,
            "ltt_test_speedup": t.full_speedup,
        }
    return {
        "ltt_threshold": float(run.grid[g]),
        "ltt_certified": True,
        "ltt_dev_risk": run.guaranteed_dev_risk,
        "ltt_test_risk": float(t.losses(guarantee)[g].mean()),
        "ltt_test_score": float(t.score[g]),
        "ltt_test_drop": float(t.full_score - t.score[g]),
        "ltt_test_speedup": float(t.speedup[g]),
    }


class Task:
    """One task's runs, grouped for seed aggregation; every statistic is built from the
    same resampled test examples, so differences between methods are paired."""

    def __init__(self, runs: list[RunReplicates], settings: Settings, info: dict):
        self.settings, self.info = settings, info
        self.groups: dict[tuple, list[RunReplicates]] = {}
        for run in sorted(runs, key=lambda r: r.key):
            for split in run.tests:
                self.groups.setdefault((run.method, run.policy, split), []).append(run)
        self.task = runs[0].task
        self._cache: dict[tuple, dict] = {}

    def point(self, method: str, policy: str, split: str) -> dict | None:
        """Seed-mean operating point: values, replicates [B] of every statistic, and the
        per-knob test score and FLOPs with their replicates [B, K] (for the ELUE score)."""
        key = (method, policy, split)
        if key not in self.groups:
            return None
        if key not in self._cache:
            runs = self.groups[key]
            ats = [r.at_point(split) for r in runs]
            tests = [r.tests[split] for r in runs]
            per_seed = {
                "score": [t.score[r.chosen] for t, r in zip(tests, runs, strict=True)],
                "drop": [
                    t.full_score - t.score[r.chosen] for t, r in zip(tests, runs, strict=True)
                ],
                "speedup": [t.speedup[r.chosen] for t, r in zip(tests, runs, strict=True)],
                "flops": [t.flops[r.chosen] for t, r in zip(tests, runs, strict=True)],
            }
            self._cache[key] = {
                "seeds": len(runs),
                # the seed mean in every replicate (the same resampled examples for all)
                "reps": {s: np.mean([a[s] for a in ats], 0) for s in (*STATS, "full_score")},
                "value": {s: float(np.mean(v)) for s, v in per_seed.items()},
                "between": {s: between(v) for s, v in per_seed.items()},
                "knobs": {
                    "score": np.mean([t.score for t in tests], 0),
                    "flops": np.mean([t.flops for t in tests], 0),
                    "seed_score": np.stack([t.score for t in tests]),
                    "seed_flops": np.stack([t.flops for t in tests]),
                    "rep_score": np.mean([t.rep_score for t in tests], 0),
                    "rep_flops": np.mean([t.rep_flops for t in tests], 0),
                },
            }
        return self._cache[key]

    def own(self, method: str) -> str | None:
        """The policy the method is reported under (its criterion; single-exit otherwise)."""
        criterion = self.info.get(method, {}).get("criterion") or "single-exit"
        found = {p for (m, p, _) in self.groups if m == method}
        return (
            criterion if criterion in found else ("single-exit" if "single-exit" in found else None)
        )

    def curve(self, backbone: str, split: str):
        """The static curve of a backbone: (FLOPs, score) values [M] and replicates [B, M]."""
        methods = curve_methods(self.info).get(backbone, [])
        points = [self.point(m, "single-exit", split) for m in methods]
        points = [p for p in points if p is not None]
        if len(points) < 2:
            return None
        flops = np.array([p["value"]["flops"] for p in points])
        order = np.argsort(flops)
        value = (flops[order], np.array([p["value"]["score"] for p in points])[order])
        rep_f = np.stack([p["reps"]["flops"] for p in points], 1)
        rep_s = np.stack([p["reps"]["score"] for p in points], 1)
        return value, (rep_f, rep_s)

    def on_curve(self, method: str, backbone: str) -> bool:
        """Whether `method` is itself a point of the backbone's static curve (it then
        differs from the curve seed by seed by construction: no between-seed term)."""
        return method in curve_methods(self.info).get(backbone, [])

    def curve_between(self, backbone: str, split: str, at) -> list[tuple[float, int]]:
        """The between-seed terms of the static curve's value at FLOPs `at` (linear
        between the two static points around it, as np.interp; several FLOPs: of the
        curve's mean value over them): each point's term times its squared weight."""
        methods = curve_methods(self.info).get(backbone, [])
        points = [self.point(m, "single-exit", split) for m in methods]
        points = sorted((p for p in points if p is not None), key=lambda p: p["value"]["flops"])
        if not points:
            return []
        flops = np.array([p["value"]["flops"] for p in points])
        at = np.atleast_1d(np.asarray(at, dtype=float))
        weights = [float(np.interp(at, flops, e).mean()) for e in np.eye(len(points))]
        return [
            (w**2 * b, df)
            for w, p in zip(weights, points, strict=True)
            for b, df in p["between"]["score"]
            if w > 0
        ]

    def finetune(self, method: str) -> str | None:
        """The plain fine-tuning run of the method's backbone (a single exit on the last layer)."""
        return finetune_of(self.info, method)


def interp_rows(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """np.interp per replicate: x [B, ...] on curves xp, fp [B, M] (sorted per row)."""
    order = np.argsort(xp, axis=1)
    xp, fp = np.take_along_axis(xp, order, 1), np.take_along_axis(fp, order, 1)
    x2 = x.reshape(len(x), -1)
    return np.stack([np.interp(x2[b], xp[b], fp[b]) for b in range(len(x))]).reshape(x.shape)


def summary_rows(task: Task) -> pd.DataFrame:
    """Per (method, policy, test split): intervals over seeds, and the differences from
    the full model and from the static curve at the same FLOPs."""
    conf = task.settings.confidence
    rows = []
    for method, policy, split in task.groups:
        p = task.point(method, policy, split)
        row = {"task": task.task, "method": method, "policy": policy, "test_split": split}
        row["seeds"] = p["seeds"]
        for stat in STATS:
            lo, hi = combined_interval(p["value"][stat], p["reps"][stat], p["between"][stat], conf)
            row |= {f"test_{stat}_lo": lo, f"test_{stat}_hi": hi}
        runs = task.groups[(method, policy, split)]
        if len(runs) == 1 and (exact := drop_interval(runs[0], split, task.settings)) is not None:
            row["test_drop_lo"], row["test_drop_hi"] = exact
        row |= _vs_finetune(task, method, policy, split, p)
        if (exact := task_vs_finetune_interval(task, method, policy, split)) is not None:
            row["vs_finetune_lo"], row["vs_finetune_hi"] = exact
        row |= _vs_curve(task, method, split, p)
        rows.append(row)
    return pd.DataFrame(rows)


def _vs_finetune(task, method, policy, split, p) -> dict:
    base_name = task.finetune(method)
    base = task.point(base_name, "single-exit", split) if base_name else None
    if base is None:
        return {
            "finetune": None,
            "vs_finetune": np.nan,
            "vs_finetune_lo": np.nan,
            "vs_finetune_hi": np.nan,
        }
    diff = p["reps"]["score"] - base["reps"]["score"]
    value = p["value"]["score"] - base["value"]["score"]
    terms = p["between"]["score"] + base["between"]["score"]
    lo, hi = combined_interval(value, diff, terms, task.settings.confidence)
    return {
        "finetune": base_name,
        "vs_finetune": value,
        "vs_finetune_lo": lo,
        "vs_finetune_hi": hi,
    }


def _vs_curve(task, method, split, p) -> dict:
    reference = task.info.get(method, {}).get("reference")
    curve = task.curve(reference, split) if reference else None
    if curve is None:
        return {"vs_curve": np.nan, "vs_curve_lo": np.nan, "vs_curve_hi": np.nan}
    (xp, fp), (rep_x, rep_f) = curve
    value = p["value"]["score"] - np.interp(p["value"]["flops"], xp, fp)
    diff = p["reps"]["score"] - interp_rows(p["reps"]["flops"], rep_x, rep_f)
    terms = p["between"]["score"] + task.curve_between(reference, split, p["value"]["flops"])
    if task.on_curve(method, reference):
        terms = []
    lo, hi = combined_interval(value, diff, terms, task.settings.confidence)
    return {"vs_curve": value, "vs_curve_lo": lo, "vs_curve_hi": hi}


def elue_rows(task: Task) -> pd.DataFrame:
    """ELUE score intervals of every (method, policy) on `test`, against its reference
    curve: per replicate, the method's seed-mean (FLOPs, score) per knob (the distinct
    points of `elue.method_points`) against that replicate's static curve."""
    rows = []
    for method, policy, split in task.groups:
        reference = task.info.get(method, {}).get("reference")
        curve = task.curve(reference, split) if split == "test" and reference else None
        if curve is None:
            continue
        knobs = task.point(method, policy, split)["knobs"]
        grid = task.groups[(method, policy, split)][0].grid
        order = np.argsort(grid, kind="stable")  # the sweep's threshold order (NaN last)
        points = pd.DataFrame({"f": knobs["flops"][order], "s": knobs["score"][order]})
        keep = order[~points.round({"f": 0, "s": 9}).duplicated().to_numpy()]
        (xp, fp), (rep_x, rep_f) = curve
        gap = knobs["rep_score"][:, keep] - interp_rows(knobs["rep_flops"][:, keep], rep_x, rep_f)
        # per seed, against the seeds' mean curve; the curve's own seeds as their terms
        seed_gap = knobs["seed_score"][:, keep] - np.interp(knobs["seed_flops"][:, keep], xp, fp)
        value = 100 * float(seed_gap.mean())
        terms = between(100 * seed_gap.mean(1)) + [
            (100**2 * b, df) for b, df in task.curve_between(reference, split, knobs["flops"][keep])
        ]
        if task.on_curve(method, reference):
            terms = []
        lo, hi = combined_interval(value, 100 * gap.mean(1), terms, task.settings.confidence)
        rows.append(
            {"task": task.task, "method": method, "policy": policy, "elue_lo": lo, "elue_hi": hi}
        )
    return pd.DataFrame(rows, columns=["task", "method", "policy", "elue_lo", "elue_hi"])
