"""Paired bootstrap replicates of every run's operating points, from the stored outputs.

What is resampled: the examples of each split, with replacement, `resamples` times.
Every run of a task sees the *same* resampled examples (indices drawn per task and
split from `seed`, examples aligned by their stored ids), so a difference between two
methods is computed on the same examples in every replicate: the bootstrap is
paired. Dev and test are resampled independently.

Selection: by default the knob stays the one chosen on the whole dev split, and the
intervals cover the test numbers at that knob (the value the point estimate
estimates; measured coverage 90-98% of nominal 95% in scripts/coverage_sim.py,
docs/statistics.md). The choice's own variability is stated apart: the share of
resampled dev splits that choose the same knob, and how many distinct knobs they
choose. With `reselect_on_dev` each replicate chooses the knob again on its resampled
dev split (`exits.operating_points.choose`) and reports the resampled test split at
that knob: the interval then covers the protocol's mean outcome over dev splits of
this size, a different and wider target.

Intervals are percentile intervals (`interval`); BCa would need a jackknife over
every example per statistic and moves 95% intervals of proportions on a few hundred
examples by far less than their width. Accuracy is computed from resample counts in
one matrix product; other metrics (F1, MCC, correlations) call the metric once per
replicate.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from early_exit.exits.metrics import score_rows
from early_exit.exits.operating_points import (
    Guarantee,
    choose,
    conservative_order,
    guaranteed,
)
from early_exit.exits.stored import load_exit_logits
from early_exit.exits.sweep import decide, decisions, load_temperatures, split_outputs
from early_exit.support.errors import DataError


@dataclass(frozen=True)
class Settings:
    """`analysis.bootstrap` of the config."""

    resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0
    reselect_on_dev: bool = False

    @classmethod
    def from_config(cls, section: dict) -> Settings:
        return cls(**section)


def resample_indices(settings: Settings, task: str, split: str, n: int) -> np.ndarray:
    """[B, n] example indices, the same for every run of `task` (a paired bootstrap)."""
    stream = zlib.crc32(f"{task}\0{split}".encode())
    rng = np.random.default_rng([settings.seed, stream])
    return rng.integers(0, n, size=(settings.resamples, n))


def _counts(idx: np.ndarray, n: int) -> np.ndarray:
    """How often each example is drawn in each replicate, [B, n] float."""
    b = idx.shape[0]
    flat = (np.arange(b)[:, None] * n + idx).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def resampled_means(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean of per-example `values` [K, n] in every replicate: [B, K]."""
    return counts @ values.T / counts.shape[1]


def resampled_scores(metric, labels, preds, idx, counts) -> np.ndarray:
    """The metric of each row of `preds` [K, n] in every replicate: [B, K]."""
    if metric == "accuracy":
        return resampled_means((preds == labels[None, :]).astype(np.float64), counts)
    return np.stack([score_rows(metric, labels[i], preds[:, i]) for i in idx])


def interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval of replicates (NaN replicates ignored; NaN if none left)."""
    values = np.asarray(replicates, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2
    lo, hi = np.quantile(values, [tail, 1 - tail])
    return float(lo), float(hi)


def p_value(value: float, differences: np.ndarray) -> float:
    """Two-sided p-value of a paired difference being 0, from its bootstrap standard
    error: 2 * Phi(-|value| / sd(replicates)). Optimistic on small discordant counts, so
    it decides only where no exact test applies (`analysis.significance`: a metric that
    is not a mean over examples against the static curve, or over several seeds; the
    table names it `bootstrap z`). Identical predictions (every replicate 0) give p = 1."""
    from scipy.stats import norm

    d = np.asarray(differences, dtype=float)
    d = d[~np.isnan(d)]
    if d.size < 2:
        return float("nan")
    se = d.std(ddof=1)
    if se == 0:
        return 1.0 if value == 0 else 0.0
    return float(2 * norm.sf(abs(value) / se))


@dataclass
class Split:
    """One split of one run under one policy: per-knob values on the full split and in
    every replicate."""

    score: np.ndarray  # [K] on the whole split (the sweep's numbers)
    speedup: np.ndarray  # [K]
    flops: np.ndarray  # [K] mean FLOPs per example
    full_score: float
    rep_score: np.ndarray  # [B, K]
    rep_speedup: np.ndarray  # [B, K]
    rep_flops: np.ndarray  # [B, K]
    rep_full_score: np.ndarray  # [B]
    rep_full_flops: np.ndarray  # [B]
    correct: np.ndarray | None = None  # [K, n] per-example correctness (classification)
    # per example, for the exact tests at fixed knobs (`analysis.significance`)
    labels: np.ndarray | None = None  # [n]
    preds: np.ndarray | None = None  # [K, n] predictions at every knob
    full_preds: np.ndarray | None = None  # [n] the run's own full model (last exit)
    spent: np.ndarray | None = None  # [K, n] FLOPs per example at every knob
    full_spent: np.ndarray | None = None  # [n] FLOPs per example at the last exit
    full_speedup: float = 1.0  # layer speed-up of the last exit

    def losses(self, guarantee: Guarantee) -> np.ndarray | None:
        """[K, n] the guarantee's 0/1 losses (None for regression: no disagreement)."""
        if self.correct is None or self.preds is None:
            return None
        return guarantee.losses(self.preds, self.full_preds, self.labels)


@dataclass
class RunReplicates:
    """One run (task, method, seed) under one policy, with the knob chosen on dev."""

    task: str
    method: str
    seed: int
    policy: str
    metric: str
    grid: np.ndarray
    chosen: int  # knob index chosen on the whole dev split (the operating point)
    rep_chosen: np.ndarray  # [B] knob index per replicate (re-chosen on dev, or `chosen`)
    tests: dict[str, Split] = field(default_factory=dict)
    # the Learn-then-Test knob (`exits.operating_points.guaranteed`): index, -1 when no knob
    # is certified (the full model), None without a guarantee or for regression
    guaranteed: int | None = None
    guaranteed_dev_risk: float = float("nan")
    # selection variability: on resampled dev splits, the share choosing this same knob
    # and how many distinct knobs they choose (whether or not intervals re-select)
    knob_agreement: float = float("nan")
    knobs_rechosen: int = 0

    @property
    def key(self) -> tuple:
        return (self.task, self.method, self.seed, self.policy)

    def at_point(self, test_split: str) -> dict[str, np.ndarray]:
        """Replicates [B] of the operating point's numbers on one test split."""
        t = self.tests[test_split]
        rows = np.arange(len(self.rep_chosen))
        score = t.rep_score[rows, self.rep_chosen]
        return {
            "score": score,
            "drop": t.rep_full_score - score,
            "speedup": t.rep_speedup[rows, self.rep_chosen],
            "flops": t.rep_flops[rows, self.rep_chosen],
            "full_score": t.rep_full_score,
        }


PER_EXAMPLE = ("logits", "labels", "lengths", "ids", "flops", "scores")


def align(stored: dict, split: str, order: np.ndarray, path: Path) -> None:
    """Put the run's examples of `split` in the task's order (`order`: ids), in place,
    so that index i is the same example in every run of the task."""
    ids = [str(v) for v in stored[f"{split}_ids"]]
    position = {v: i for i, v in enumerate(ids)}
    missing = [str(v) for v in order if str(v) not in position]
    if missing or len(ids) != len(order):
        example = missing[0] if missing else "(a different number of examples)"
        raise DataError(
            f"{path}: its {split} examples differ from the other runs' of the task "
            f"(first difference: {example}); rerun rule train for it"
        )
    perm = np.array([position[str(v)] for v in order])
    for name in PER_EXAMPLE:
        if f"{split}_{name}" in stored:
            stored[f"{split}_{name}"] = stored[f"{split}_{name}"][perm]


def split_values(stored: dict, split: str, temps, policies: dict, idx: np.ndarray) -> dict:
    """Per policy: (grid, Split) with every knob's values on the split and resampled."""
    out = split_outputs(stored, split, temps)
    n = len(out.labels)
    layers, flops = stored["exit_layers"], stored[f"{split}_flops"].astype(np.float64)
    num_layers, metric = int(stored["num_layers"]), str(stored["metric"])
    counts = _counts(idx, n)
    full_preds = decide(out, np.full((1, n), out.n_exits - 1))
    full = {
        "full_score": float(score_rows(metric, out.labels, full_preds)[0]),
        "rep_full_score": resampled_scores(metric, out.labels, full_preds, idx, counts)[:, 0],
        "rep_full_flops": resampled_means(flops[:, -1][None, :], counts)[:, 0],
    }
    found = {}
    for name, grid, exit_idx in decisions(stored, policies, split, temps):
        preds = decide(out, exit_idx)
        layer = layers[exit_idx].astype(np.float64)
        spent = flops[np.arange(n)[None, :], exit_idx]
        found[name] = (
            grid,
            Split(
                score=score_rows(metric, out.labels, preds),
                speedup=num_layers / layer.mean(1),
                flops=spent.mean(1),
                rep_score=resampled_scores(metric, out.labels, preds, idx, counts),
                rep_speedup=num_layers / resampled_means(layer, counts),
                rep_flops=resampled_means(spent, counts),
                correct=(preds == out.labels[None, :])
                if out.task_type == "classification"
                else None,
                labels=out.labels,
                preds=preds,
                full_preds=full_preds[0],
                spent=spent,
                full_spent=flops[:, -1],
                full_speedup=num_layers / float(layers[-1]),
                **full,
            ),
        )
    return found


def run_replicates(
    run_dir: Path,
    key: tuple[str, str, int],
    policies: dict,
    settings: Settings,
    max_drop: float,
    order: dict[str, np.ndarray] | None = None,
    guarantee: Guarantee | None = None,
) -> tuple[list[RunReplicates], dict[str, np.ndarray]]:
    """Every policy's replicates for one run (`run_dir` holds exit_logits.npz and
    calibration.json); `order` (split -> ids, from the task's first run) aligns the
    examples, and the run's own order is returned for the next runs of the task. With a
    `guarantee`, each policy's Learn-then-Test knob is chosen on dev too."""
    run_dir = Path(run_dir)
    path = run_dir / "exit_logits.npz"
    stored = load_exit_logits(path)
    temps = load_temperatures(run_dir / "calibration.json")
    splits = [str(s) for s in stored.get("splits", ["dev", "test"])]
    order = dict(order or {})
    values = {}
    for split in splits:
        if split in order:
            align(stored, split, order[split], path)
        order[split] = stored[f"{split}_ids"]
        idx = resample_indices(settings, key[0], split, len(order[split]))
        values[split] = split_values(stored, split, temps, policies, idx)
    found = []
    for name, (grid, dev) in values["dev"].items():
        point = int(choose(dev.score, np.array([dev.full_score]), dev.speedup, max_drop)[0])
        again = choose(dev.rep_score, dev.rep_full_score, dev.rep_speedup, max_drop)
        rep = again if settings.reselect_on_dev else np.full(settings.resamples, point)
        tests = {s: v[name][1] for s, v in values.items() if s.startswith("test") and name in v}
        metric = str(stored["metric"])
        run = RunReplicates(*key, name, metric, grid, point, rep, tests)
        run.knob_agreement = float(np.mean(again == point))
        run.knobs_rechosen = int(len(np.unique(again)))
        losses = dev.losses(guarantee) if guarantee is not None else None
        if losses is not None:
            order_k = conservative_order(1 / dev.speedup)
            n = losses.shape[1]
            g = guaranteed(losses.sum(1), n, order_k, guarantee.delta, guarantee.epsilon)[0]
            run.guaranteed = int(g)
            run.guaranteed_dev_risk = float(losses[g].mean()) if g >= 0 else float("nan")
        found.append(run)
    return found, order
