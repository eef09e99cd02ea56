"""Task metrics by name (scikit-learn / scipy), so tables say which metric they report.

Names follow the papers: accuracy, f1 (MRPC/QQP), mcc (CoLA), acc_and_f1 (mean of
accuracy and F1), pearson / spearman / corr (STS-B); macro_f1 for multi-class.
scikit-learn and scipy are imported on first use: checking a config needs the names only.
"""

from __future__ import annotations

import functools

import numpy as np

from early_exit.data.registry import METRICS_BY_TYPE
from early_exit.support.errors import ConfigError

METRIC_NAMES = tuple(name for names in METRICS_BY_TYPE.values() for name in names)


@functools.cache
def _functions() -> dict:
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    return {
        "accuracy": accuracy_score,
        "macro_f1": lambda y, p: f1_score(y, p, average="macro"),
        "f1": f1_score,
        "mcc": matthews_corrcoef,
        "acc_and_f1": lambda y, p: (accuracy_score(y, p) + f1_score(y, p)) / 2,
        "pearson": lambda y, p: pearsonr(y, p).statistic,
        "spearman": lambda y, p: spearmanr(y, p).statistic,
        # ElasticBERT's STS-B selection metric: mean of Pearson and Spearman
        "corr": lambda y, p: (pearsonr(y, p).statistic + spearmanr(y, p).statistic) / 2,
    }


def check_metric(name: str) -> None:
    if name not in METRIC_NAMES:
        raise ConfigError(f"metric: unknown metric {name!r}; allowed: {', '.join(METRIC_NAMES)}")


def score_rows(name: str, labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """The metric of each row of predictions [K, N]; accuracy is vectorised (sweeps are
    mostly accuracy, and K can be hundreds)."""
    check_metric(name)
    if name == "accuracy":
        return (predictions == labels[None, :]).mean(1)
    return np.array([_functions()[name](labels, p) for p in predictions])
