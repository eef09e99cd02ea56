"""Temperature scaling per exit (Guo et al. 2017), as Sledgehammer calibrates its exits.

For each exit separately a scalar T > 0 minimises the negative log-likelihood of
softmax(z / T) on the dev set. Sledgehammer's script tries Adam/LBFGS with a list of
learning rates; the problem is one-dimensional and convex in log T, so a bounded
scalar minimiser on log T finds the same optimum without tuning. Expected
calibration error (ECE, 15 equal-width confidence bins, each (lo, hi] as in Guo et al.'s
and Sledgehammer's code) is reported before and after.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from early_exit.exits.stored import load_exit_logits
from early_exit.support.atomic import write_json

LOG_T_BOUNDS = (-5.0, 5.0)  # T in [0.007, 148]
N_BINS = 15  # equal-width confidence bins of the ECE and the reliability diagrams


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of softmax(logits / T)."""
    logp = log_softmax(logits.astype(np.float64) / temperature, axis=-1)
    return float(-logp[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T minimising dev NLL for one exit's logits [N, C]."""
    result = minimize_scalar(
        lambda log_t: nll(logits, labels, np.exp(log_t)),
        bounds=LOG_T_BOUNDS,
        method="bounded",
        options={"xatol": 1e-6},
    )
    return float(np.exp(result.x))


def confidence_bins(
    logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0, n_bins: int = N_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per example: its confidence bin, max softmax(z / T) and whether the argmax is right."""
    probs = np.exp(log_softmax(logits.astype(np.float64) / temperature, axis=-1))
    conf, correct = probs.max(-1), probs.argmax(-1) == labels
    return bin_index(conf, n_bins), conf, correct


def bin_index(conf: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Equal-width bins closed on the right, (lo, hi], as Guo et al.'s and Sledgehammer's
    ECE code (`conf > lo and conf <= hi` over `linspace(0, 1, n_bins + 1)`): a confidence
    exactly on an edge belongs to the lower bin. Their code drops a confidence of exactly
    0; a softmax maximum is at least 1/C, so here 0 is simply put in the first bin."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)


def ece(
    logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0, n_bins: int = N_BINS
) -> float:
    """Expected calibration error: sum over confidence bins of |accuracy - confidence|,
    weighted by the fraction of examples in the bin."""
    bins, conf, correct = confidence_bins(logits, labels, temperature, n_bins)
    total = 0.0
    for b in np.unique(bins):
        in_bin = bins == b
        total += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(total)


def calibrate(stored: dict) -> dict:
    """Per exit: T fitted on dev, and dev/test NLL and ECE before and after scaling."""
    report = {"exit_layers": stored["exit_layers"].tolist(), "temperatures": []}
    for split in ("dev", "test"):
        for key in ("nll_before", "nll_after", "ece_before", "ece_after"):
            report[f"{split}_{key}"] = []
    for e in range(len(report["exit_layers"])):
        temp = fit_temperature(stored["dev_logits"][:, e], stored["dev_labels"])
        report["temperatures"].append(temp)
        for split in ("dev", "test"):
            z, y = stored[f"{split}_logits"][:, e], stored[f"{split}_labels"]
            report[f"{split}_nll_before"].append(nll(z, y))
            report[f"{split}_nll_after"].append(nll(z, y, temp))
            report[f"{split}_ece_before"].append(ece(z, y))
            report[f"{split}_ece_after"].append(ece(z, y, temp))
    return report


def calibrate_file(logits_path: Path, out_path: Path) -> dict:
    """Write the calibration report of one run (temperatures are null for regression)."""
    stored = load_exit_logits(logits_path)
    if str(stored["task_type"]) == "regression":
        report = {"exit_layers": stored["exit_layers"].tolist(), "temperatures": None}
    else:
        report = calibrate(stored)
    write_json(out_path, report)
    return report
