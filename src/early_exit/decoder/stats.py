"""Percentile bootstrap intervals over prompts (or texts) for the decoder's figures.

Every figure of the decoder stage is a mean or a ratio of sums over prompts; the interval
resamples the prompts with replacement (each resample recomputes the same statistic), so
the interval says how much the figure depends on which prompts were drawn. numpy only:
the decoder sits below the analysis floor.
"""

from __future__ import annotations

import math

import numpy as np


def ratio_interval(
    numerator, denominator, resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """sum(numerator) / sum(denominator) over units, and its percentile interval."""
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    if num.size == 0 or den.sum() == 0:
        return math.nan, math.nan, math.nan
    value = float(num.sum() / den.sum())
    if num.size < 2:
        return value, math.nan, math.nan
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, num.size, size=(resamples, num.size))
    with np.errstate(invalid="ignore", divide="ignore"):
        stats = num[picks].sum(1) / den[picks].sum(1)
    stats = stats[np.isfinite(stats)]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(stats, [tail, 100 - tail])
    return value, float(low), float(high)


def mean_interval(values, resamples: int = 2000, confidence: float = 0.95, seed: int = 0):
    """The mean over units and its percentile interval."""
    values = np.asarray(values, dtype=float)
    return ratio_interval(values, np.ones_like(values), resamples, confidence, seed)


def exp_interval(nll, counts, resamples: int = 2000, confidence: float = 0.95, seed: int = 0):
    """Perplexity exp(sum nll / sum tokens) over texts, and its interval."""
    value, low, high = ratio_interval(nll, counts, resamples, confidence, seed)
    return math.exp(value), math.exp(low), math.exp(high)
