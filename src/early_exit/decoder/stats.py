"""Percentile bootstrap intervals over prompts (or texts) for the decoder's figures.

Every figure of the decoder stage is a mean or a ratio of sums over prompts; the interval
resamples the prompts with replacement, numerator and denominator together
(`scipy.stats.bootstrap`, paired), so it says how much the figure depends on which
prompts were drawn. Percentile intervals, as in the analysis floor's bootstrap.
"""

from __future__ import annotations

import math
import warnings

import numpy as np


def ratio_interval(
    numerator, denominator, resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """sum(numerator) / sum(denominator) over units, and its percentile interval (NaN ends
    with fewer than two units). A resample whose denominators are all 0 (a prompt can end
    before a draft) has no ratio: the interval is taken over the resamples that have one."""
    from scipy.stats import DegenerateDataWarning, bootstrap

    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    if num.size == 0 or den.sum() == 0:
        return math.nan, math.nan, math.nan
    value = float(num.sum() / den.sum())
    if num.size < 2:
        return value, math.nan, math.nan

    def ratio(n, d, axis=-1):
        with np.errstate(invalid="ignore", divide="ignore"):
            return n.sum(axis=axis) / d.sum(axis=axis)

    with warnings.catch_warnings():  # scipy warns of the undefined resamples named above
        warnings.simplefilter("ignore", DegenerateDataWarning)
        replicates = bootstrap(
            (num, den),
            ratio,
            paired=True,
            vectorized=True,
            n_resamples=resamples,
            method="percentile",
            rng=np.random.default_rng(seed),
        ).bootstrap_distribution
    replicates = replicates[np.isfinite(replicates)]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return value, float(low), float(high)


def mean_interval(values, resamples: int = 2000, confidence: float = 0.95, seed: int = 0):
    """The mean over units and its percentile interval."""
    values = np.asarray(values, dtype=float)
    return ratio_interval(values, np.ones_like(values), resamples, confidence, seed)


def exp_interval(nll, counts, resamples: int = 2000, confidence: float = 0.95, seed: int = 0):
    """Perplexity exp(sum nll / sum tokens) over texts, and its interval."""
    value, low, high = ratio_interval(nll, counts, resamples, confidence, seed)
    return math.exp(value), math.exp(low), math.exp(high)
