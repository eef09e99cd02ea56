"""Exit policies as pure, vectorised functions over stored logits.

Each policy maps logits [N, E, C] (N examples, E exits) and a grid of K knob
values to the exit each example takes under each value: an index array [K, N]
into the exits. The last exit always answers when no earlier one fires.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax

from early_exit.errors import ConfigError


def entropy(logits: np.ndarray) -> np.ndarray:
    """Entropy of softmax(logits) over the last axis, computed stably via log-softmax."""
    logp = log_softmax(logits.astype(np.float64), axis=-1)
    return -(np.exp(logp) * logp).sum(-1)


def first_true(fires: np.ndarray) -> np.ndarray:
    """Index of the first exit that fires along the last axis; the last exit if none does."""
    fires = fires.copy()
    fires[..., -1] = True
    return fires.argmax(-1)


def entropy_exits(logits: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """DeeBERT: exit at the first exit whose prediction entropy is below S.

    The check is strict (H < S), so S = 0 never exits early; for C classes,
    S > ln C makes every example leave at the first exit.
    """
    ent = entropy(logits)  # [N, E]
    return first_true(ent[None, :, :] < np.asarray(thresholds)[:, None, None])


def entropy_grid(num_labels: int, num: int) -> np.ndarray:
    """`num` thresholds from 0 (never exit early) to just above ln C (always exit first)."""
    return np.linspace(0.0, np.log(num_labels) * 1.001, num)


POLICIES = {"entropy": (entropy_exits, entropy_grid)}


def get_policy(name: str):
    if name not in POLICIES:
        raise ConfigError(f"sweep.policies: unknown policy {name!r}; allowed: {sorted(POLICIES)}")
    return POLICIES[name]
