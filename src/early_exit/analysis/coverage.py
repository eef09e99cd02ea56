"""Do the 95% intervals cover 95%? A simulation over dev/test splits drawn from a pool.

The pool stands for the population: every labelled example with its stored outputs
(per knob: correct or not, exit layer), dev and test together. Each simulated split
draws a dev and a test sample of the real sizes from the pool with replacement, chooses
the knob on dev by the protocol's rule (`exits.operating_points.choose`), and builds the
intervals the `operating_points` rule builds:

- **fixed knob**: the test examples resampled at the knob chosen on the drawn dev split
  (the drop: the Agresti-Min interval the workflow uses there,
  `analysis.intervals.paired_difference_interval`);
- **re-selected**: dev resampled too and the knob chosen again in every replicate
  (`analysis.bootstrap.reselect_on_dev`).

Two truths an interval may be meant to cover, for the score, the drop (own full model
minus early exit), the layer speed-up and, where the pool holds plain fine-tuning's
answers on the same examples, **vs fine-tuning** (early exit minus fine-tuning: the
workflow's paired percentile bootstrap at a fixed knob, and the Agresti-Min interval as
the alternative, recorded as the interval kind `agresti-min`):

- **at the chosen knob**: the pool's value at the knob chosen on the drawn dev split,
  what the point estimate estimates;
- **of the protocol**: the mean of that value over dev splits, what "choose on a dev
  split of this size, then measure" gives on average.

Coverage is the share of simulated splits whose interval contains the truth; the script
`scripts/coverage_sim.py` runs it over a run's stored outputs, and docs/statistics.md
records what it measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from early_exit.analysis.bootstrap import _counts
from early_exit.analysis.intervals import paired_difference_interval
from early_exit.exits.operating_points import (
    Guarantee,
    choose,
    conservative_order,
    guaranteed,
)

STATS = ("score", "drop", "speedup")
VS_FINETUNE = "vs_finetune"


@dataclass(frozen=True)
class Pool:
    """One run under one policy, per example of the pool (accuracy)."""

    correct: np.ndarray  # [K, N] bool: correct at each knob
    layer: np.ndarray  # [K, N] exit layer at each knob
    full_correct: np.ndarray  # [N] bool: the run's own full model
    num_layers: int
    differ: np.ndarray | None = None  # [K, N] bool: answer differs from the full model's
    finetune_correct: np.ndarray | None = None  # [N] bool: plain fine-tuning, same examples

    @property
    def stats(self) -> tuple[str, ...]:
        """The statistics this pool can simulate."""
        return STATS + ((VS_FINETUNE,) if self.finetune_correct is not None else ())

    def values(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """Per knob [K], on the examples `idx`."""
        score = self.correct[:, idx].mean(1)
        values = {
            "score": score,
            "drop": self.full_correct[idx].mean() - score,
            "speedup": self.num_layers / self.layer[:, idx].mean(1),
            "full": np.array([self.full_correct[idx].mean()]),
        }
        if self.finetune_correct is not None:
            values[VS_FINETUNE] = score - self.finetune_correct[idx].mean()
        return values

    def resampled(self, idx: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
        """Per replicate and knob [B, K], with resample `counts` [B, n] of the examples `idx`."""
        n = len(idx)
        score = counts @ self.correct[:, idx].T.astype(np.float64) / n
        full = counts @ self.full_correct[idx].astype(np.float64) / n
        layer = counts @ self.layer[:, idx].T.astype(np.float64) / n
        values = {
            "score": score,
            "drop": full[:, None] - score,
            "speedup": self.num_layers / layer,
            "full": full,
        }
        if self.finetune_correct is not None:  # paired: the same resampled examples
            tuned = counts @ self.finetune_correct[idx].astype(np.float64) / n
            values[VS_FINETUNE] = score - tuned[:, None]
        return values


def _percentile(reps: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    tail = (1 - confidence) / 2
    lo, hi = np.quantile(reps, [tail, 1 - tail], axis=0)
    return lo, hi


def simulate(
    pool: Pool,
    n_dev: int,
    n_test: int,
    max_drop: float,
    draws: int = 200,
    resamples: int = 400,
    confidence: float = 0.95,
    seed: int = 0,
    guarantee: Guarantee | None = None,
) -> pd.DataFrame:
    """One row per simulated split: the knob chosen on its dev sample, the truth at that
    knob, and each interval's bounds for every statistic. With a `guarantee` (and
    `pool.differ`), also the Learn-then-Test knob chosen on the same dev sample and the
    pool's disagreement and speed-up there (`ltt_risk_truth`, `ltt_speedup_truth`)."""
    rng = np.random.default_rng(seed)
    size = pool.correct.shape[1]
    truth_all = pool.values(np.arange(size))
    rows = []
    for draw in range(draws):
        dev = rng.integers(0, size, n_dev)
        test = rng.integers(0, size, n_test)
        d = pool.values(dev)
        k = int(choose(d["score"], d["full"], d["speedup"], max_drop)[0])
        rep_dev = pool.resampled(dev, _counts(rng.integers(0, n_dev, (resamples, n_dev)), n_dev))
        rep_k = choose(rep_dev["score"], rep_dev["full"], rep_dev["speedup"], max_drop)
        rep_test = pool.resampled(
            test, _counts(rng.integers(0, n_test, (resamples, n_test)), n_test)
        )
        t = pool.values(test)
        rows_b = np.arange(resamples)
        row = {"draw": draw, "knob": k, "knob_agreement": float(np.mean(rep_k == k))}
        if guarantee is not None and pool.differ is not None:
            order = conservative_order(1 / d["speedup"])
            counts = pool.differ[:, dev].sum(1)
            g = int(guaranteed(counts, n_dev, order, guarantee.delta, guarantee.epsilon)[0])
            risk = pool.differ.mean(1)
            row |= {
                "ltt_knob": g,
                "ltt_risk_truth": float(risk[g]) if g >= 0 else 0.0,
                "ltt_speedup_truth": float(truth_all["speedup"][g]) if g >= 0 else np.nan,
                "point_risk_truth": float(risk[k]),
            }
        for stat in pool.stats:
            fixed = _percentile(rep_test[stat][:, k], confidence)
            if stat == "drop":  # as the workflow does at a fixed knob (accuracy)
                full, early = pool.full_correct[test], pool.correct[k, test]
                fixed = paired_difference_interval(full, early, confidence)
            if stat == VS_FINETUNE:  # the alternative to the workflow's percentile bootstrap
                early, tuned = pool.correct[k, test], pool.finetune_correct[test]
                lo, hi = paired_difference_interval(early, tuned, confidence)
                row |= {f"{stat}_agresti-min_lo": float(lo), f"{stat}_agresti-min_hi": float(hi)}
            again = _percentile(rep_test[stat][rows_b, rep_k], confidence)
            row |= {
                f"{stat}_truth": float(truth_all[stat][k]),
                f"{stat}_point": float(t[stat][k]),
                f"{stat}_fixed_lo": float(fixed[0]),
                f"{stat}_fixed_hi": float(fixed[1]),
                f"{stat}_reselected_lo": float(again[0]),
                f"{stat}_reselected_hi": float(again[1]),
            }
        rows.append(row)
    return pd.DataFrame(rows)


def coverage(draws: pd.DataFrame) -> pd.DataFrame:
    """Per statistic, interval and truth (`at knob`, `protocol`): the share of simulated
    splits whose interval holds the truth, the shares missing it below and above, and
    the mean width."""
    rows = []
    for stat in (s for s in (*STATS, VS_FINETUNE) if f"{s}_truth" in draws):
        truths = {
            "at knob": draws[f"{stat}_truth"],
            "protocol": np.full(len(draws), draws[f"{stat}_truth"].mean()),
        }
        kinds = [k for k in ("fixed", "agresti-min", "reselected") if f"{stat}_{k}_lo" in draws]
        for kind in kinds:
            lo, hi = draws[f"{stat}_{kind}_lo"], draws[f"{stat}_{kind}_hi"]
            for name, truth in truths.items():
                rows.append(
                    {
                        "statistic": stat,
                        "interval": kind,
                        "truth": name,
                        "coverage": float(((lo <= truth) & (truth <= hi)).mean()),
                        "truth_below": float((truth < lo).mean()),
                        "truth_above": float((truth > hi).mean()),
                        "width": float((hi - lo).mean()),
                    }
                )
    return pd.DataFrame(rows)
