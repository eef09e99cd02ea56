"""A toy exit policy, written as a policy module of `early_exit.exits.policies` is: it
exits at the first exit whose logit margin (top-1 minus top-2 logit, divided by its option
`scale`) reaches m. Nothing else in the package knows it; `registered()` adds it to the
registry for one test, which shows that a new policy needs its module and the registry only.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from early_exit.exits import policies
from early_exit.exits.policies.base import Outputs, Policy, RuntimePolicy, as_numpy, first_true

SCALE = 1.0


def margins(logits: np.ndarray, scale: float = SCALE) -> np.ndarray:
    """(top-1 - top-2 logit) / scale over the last axis."""
    top2 = np.sort(logits.astype(np.float64), axis=-1)[..., -2:]
    return (top2[..., 1] - top2[..., 0]) / scale


def exits(out: Outputs, thresholds: np.ndarray, scale: float = SCALE) -> np.ndarray:
    return first_true(margins(out.logits, scale)[None] >= np.asarray(thresholds)[:, None, None])


def grid(out: Outputs, cfg: dict) -> np.ndarray:
    return np.linspace(0.0, 4.0, cfg["num_thresholds"])


@dataclass
class MarginPolicy(RuntimePolicy):
    scale: float = SCALE
    score_name = "margin"

    def fires(self, exit_index, logits, scores, state):
        state["score"] = margins(as_numpy(logits), self.scale)
        return state["score"] >= self.knob


POLICY = Policy(
    "margin",
    exits,
    grid,
    ("classification",),
    settings={
        "num_thresholds": {"type": "integer", "minimum": 2, "default": 9},
        "scale": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": SCALE,
            "description": "the margin is divided by this",
        },
    },
    options=("scale",),
    runtime=MarginPolicy,
    never_fires=np.inf,
    symbol="m",
    knob="margin",
    rule="at the first layer whose top two logits differ by at least $m$",
)


@contextmanager
def registered():
    """The toy policy in the registry, for the duration of a `with` block."""
    policies.register(POLICY)
    try:
        yield POLICY
    finally:
        del policies.POLICIES[POLICY.name]
