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

Seeds: a method's numbers over seeds are the mean over its seeds. With several seeds,
each replicate also resamples the seeds (a two-level bootstrap: seeds with
replacement, then the replicate's resampled test examples, shared by all seeds since
they are the same examples), so the interval covers training-seed and test-sampling
variance together. With one seed it covers test sampling (and, with
`reselect_on_dev`, the choice of knob on dev) only; the tables say which.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from early_exit.analysis.bootstrap import RunReplicates, Settings, interval
from early_exit.analysis.elue import curve_methods
from early_exit.exits.operating_points import Guarantee

STATS = ("score", "drop", "speedup", "flops")


def seed_draws(settings: Settings, seeds: int, *names) -> np.ndarray | None:
    """Which seeds each replicate averages, [B, S] (drawn with replacement; None with one
    seed). Deterministic, and independent between methods: their seeds are independent
    training runs."""
    if seeds == 1:
        return None
    rng = np.random.default_rng([settings.seed, zlib.crc32("\0".join(map(str, names)).encode())])
    return rng.integers(0, seeds, size=(settings.resamples, seeds))


def mean_draws(replicates: list[np.ndarray], draws: np.ndarray | None) -> np.ndarray:
    """Per replicate, the mean over its drawn seeds: [B, ...] from S arrays [B, ...]."""
    stacked = np.stack(replicates)
    if draws is None:
        return stacked[0]
    return stacked[draws, np.arange(stacked.shape[1])[:, None]].mean(1)


def coverage(seeds: int, settings: Settings) -> str:
    """What an interval covers, for a table's note."""
    knob = " and the choice of knob on resampled dev" if settings.reselect_on_dev else ""
    seeds_part = "training seeds and test sampling" if seeds > 1 else "test sampling only"
    pct = f"{settings.confidence * 100:g}%"
    return (
        f"{pct} paired bootstrap percentile intervals ({settings.resamples} resamples, "
        f"seed {settings.seed}) covering {seeds_part}{knob}"
    )


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
            draws = seed_draws(self.settings, len(runs), self.task, *key)
            ats = [r.at_point(split) for r in runs]
            tests = [r.tests[split] for r in runs]
            self._cache[key] = {
                "seeds": len(runs),
                "reps": {s: mean_draws([a[s] for a in ats], draws) for s in (*STATS, "full_score")},
                "value": {
                    "score": np.mean([t.score[r.chosen] for t, r in zip(tests, runs, strict=True)]),
                    "flops": np.mean([t.flops[r.chosen] for t, r in zip(tests, runs, strict=True)]),
                },
                "knobs": {
                    "score": np.mean([t.score for t in tests], 0),
                    "flops": np.mean([t.flops for t in tests], 0),
                    "rep_score": mean_draws([t.rep_score for t in tests], draws),
                    "rep_flops": mean_draws([t.rep_flops for t in tests], draws),
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

    def finetune(self, method: str) -> str | None:
        """The plain fine-tuning run of the method's backbone (a single exit on the last layer)."""
        backbone = self.info.get(method, {}).get("backbone")
        for name, i in sorted(self.info.items()):
            if i.get("full_model") and i.get("backbone") == backbone:
                return name
        return None


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
            lo, hi = interval(p["reps"][stat], conf)
            row |= {f"test_{stat}_lo": lo, f"test_{stat}_hi": hi}
        row |= _vs_finetune(task, method, policy, split, p)
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
    lo, hi = interval(diff, task.settings.confidence)
    value = p["value"]["score"] - base["value"]["score"]
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
    lo, hi = interval(diff, task.settings.confidence)
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
        (_, _), (rep_x, rep_f) = curve
        gap = knobs["rep_score"][:, keep] - interp_rows(knobs["rep_flops"][:, keep], rep_x, rep_f)
        lo, hi = interval(100 * gap.mean(1), task.settings.confidence)
        rows.append(
            {"task": task.task, "method": method, "policy": policy, "elue_lo": lo, "elue_hi": hi}
        )
    return pd.DataFrame(rows, columns=["task", "method", "policy", "elue_lo", "elue_hi"])
