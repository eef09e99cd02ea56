"""DeeBERT's entropy policy: exit at the first exit whose prediction entropy is below S."""

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


def entropy(logits: np.ndarray) -> np.ndarray:
    """Entropy of softmax(logits) over the last axis, computed stably via log-softmax."""
    logp = log_softmax(logits.astype(np.float64), axis=-1)
    return -(np.exp(logp) * logp).sum(-1)


def exits(out: Outputs, thresholds: np.ndarray) -> np.ndarray:
    """DeeBERT: exit at the first exit whose prediction entropy is below S.

    The check is strict (H < S), so S = 0 never exits early; for C classes,
    S > ln C makes every example leave at the first exit.
    """
    ent = entropy(out.logits)  # [N, E]
    return first_true(ent[None, :, :] < np.asarray(thresholds)[:, None, None])


def grid(out: Outputs, cfg: dict) -> np.ndarray:
    """From 0 (never exit early) to just above ln C (always exit first)."""
    return np.linspace(0.0, np.log(out.logits.shape[-1]) * 1.001, cfg["num_thresholds"])


@dataclass
class EntropyPolicy(RuntimePolicy):
    """DeeBERT: fires when H(softmax(z_i)) < S."""

    score_name = "entropy"

    def fires(self, exit_index, logits, scores, state):
        state["score"] = entropy(as_numpy(logits))
        return state["score"] < self.knob


POLICY = Policy(
    "entropy",
    exits,
    grid,
    ("classification",),
    settings=NUM_THRESHOLDS,
    runtime=EntropyPolicy,
    never_fires=0.0,
    symbol="S",
    knob="entropy threshold",
    rule="at the first layer $i$ with entropy $H(p_i) < S$",
)
