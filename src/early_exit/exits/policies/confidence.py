"""Sledgehammer's confidence policy: exit at the first exit whose calibrated confidence
max softmax(z_i / T_i) reaches c, with T_i fitted on dev (`exits.calibration`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from early_exit.exits.policies.base import (
    NUM_THRESHOLDS,
    Outputs,
    Policy,
    RuntimePolicy,
    as_numpy,
    first_true,
    log_softmax,
)


def calibrated_confidence(logits: np.ndarray, temperatures: np.ndarray) -> np.ndarray:
    """max softmax(z / T) over the last axis; `temperatures` has the shape of logits[..., 0]
    (or broadcasts to it). The runtime policy calls this too, so both agree bit for bit."""
    scaled = logits.astype(np.float64) / np.asarray(temperatures, dtype=np.float64)[..., None]
    return np.exp(log_softmax(scaled, axis=-1).max(-1))


def confidence(out: Outputs) -> np.ndarray:
    """Calibrated confidence max softmax(z_i / T_i), shape [N, E]."""
    temps = np.ones(out.n_exits) if out.temperatures is None else np.asarray(out.temperatures)
    return calibrated_confidence(out.logits, temps)


def exits(out: Outputs, thresholds: np.ndarray) -> np.ndarray:
    """Sledgehammer: exit at the first exit whose calibrated confidence reaches c."""
    return first_true(confidence(out)[None] >= np.asarray(thresholds)[:, None, None])


def grid(out: Outputs, cfg: dict) -> np.ndarray:
    """From 1/C (always exit first) to just above 1 (never exit early)."""
    low = 1.0 / out.logits.shape[-1]
    return np.append(np.linspace(low, 1.0, cfg["num_thresholds"] - 1), np.nextafter(1.0, 2.0))


@dataclass
class ConfidencePolicy(RuntimePolicy):
    """Sledgehammer: fires when max softmax(z_i / T_i) >= c (T fitted on dev)."""

    score_name = "confidence"

    def fires(self, exit_index, logits, scores, state):
        temp = 1.0 if self.temperatures is None else self.temperatures[exit_index]
        state["score"] = calibrated_confidence(as_numpy(logits), np.float64(temp))
        return state["score"] >= self.knob


POLICY = Policy(
    "confidence",
    exits,
    grid,
    ("classification",),
    settings=NUM_THRESHOLDS,
    runtime=ConfidencePolicy,
    never_fires=1.01,
    calibrated=True,
    symbol="c",
    knob="confidence threshold",
    rule="at the first layer $i$ with calibrated confidence "
    "$\\max_c \\mathrm{softmax}(z_i / T_i)_c \\ge c$",
)
