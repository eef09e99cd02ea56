"""Task metrics by name (scikit-learn / scipy), so tables say which metric they report.

Names follow the papers: accuracy, f1 (MRPC/QQP), mcc (CoLA), acc_and_f1 (mean of
accuracy and F1), pearson / spearman / corr (STS-B); macro_f1 for multi-class.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from early_exit.errors import ConfigError


def _acc_and_f1(y, p):
    return (accuracy_score(y, p) + f1_score(y, p)) / 2


def _corr(y, p):
    return (pearsonr(y, p).statistic + spearmanr(y, p).statistic) / 2


METRICS = {
    "accuracy": accuracy_score,
    "macro_f1": lambda y, p: f1_score(y, p, average="macro"),
    "f1": f1_score,
    "mcc": matthews_corrcoef,
    "acc_and_f1": _acc_and_f1,
    "pearson": lambda y, p: pearsonr(y, p).statistic,
    "spearman": lambda y, p: spearmanr(y, p).statistic,
    "corr": _corr,  # ElasticBERT's STS-B selection metric: mean of Pearson and Spearman
}


def check_metric(name: str) -> None:
    if name not in METRICS:
        raise ConfigError(f"metric: unknown metric {name!r}; allowed: {sorted(METRICS)}")


def score(name: str, labels: np.ndarray, predictions: np.ndarray) -> float:
    check_metric(name)
    return float(METRICS[name](labels, predictions))
