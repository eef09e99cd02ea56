"""BERxiT's learned policy: exit at the first exit whose learned gate output u_i is below
tau. The gate (`MultiExitModel.gate_score`) predicts whether the exit is wrong; the predict
pass stores its outputs beside the logits (`Outputs.scores`), so a run without a gate has
no such policy (`Policy.needs_scores`)."""

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
)
from early_exit.support.errors import ConfigError


def gate_fires(scores: np.ndarray, threshold) -> np.ndarray:
    """BERxiT's rule, shared by the sweep and the runtime policy: u_i < threshold."""
    return np.asarray(scores) < threshold


def exits(out: Outputs, thresholds: np.ndarray) -> np.ndarray:
    """BERxiT: exit at the first exit whose learned gate output u_i is below tau.

    The gate predicts whether the exit is wrong, so tau = 0 never exits early and
    tau above every score exits at the first exit.
    """
    if out.scores is None:
        raise ConfigError(
            "policy learned: this run stores no gate outputs (a model without a gate)"
        )
    return first_true(gate_fires(out.scores[None], np.asarray(thresholds)[:, None, None]))


# BERxiT's released default threshold (`lte_th = 0.005`): not on the uniform grid's
# steps of 1/39, so `include` adds it (and values near it) where a config asks.
RELEASED_KNOB = 0.005

SETTINGS = {
    **NUM_THRESHOLDS,
    "include": {
        "type": "array",
        "items": {"type": "number", "minimum": 0},
        "default": [],
        "description": "gate thresholds added to the uniform grid (BERxiT's released "
        "default is 0.005, between the grid's first two values)",
    },
}


def grid(out: Outputs, cfg: dict) -> np.ndarray:
    """From 0 (never exit early) to just above 1 (always exit first): gate outputs are
    sigmoids. The uniform grid is spaced 1 / (num_thresholds - 2), far coarser than the
    released default 0.005 near 0, where a well-trained gate's outputs gather: values
    under `include` are added (sorted, without repeats)."""
    uniform = np.append(np.linspace(0.0, 1.0, cfg["num_thresholds"] - 1), np.nextafter(1.0, 2.0))
    return np.unique(np.concatenate([uniform, np.asarray(cfg.get("include", []), float)]))


@dataclass
class LearnedPolicy(RuntimePolicy):
    """BERxiT: fires when the learned exit gate's output u_i is below tau. The gate's
    outputs come from the model (`MultiExitModel.gate_score`), as the predict pass stores
    them; the rule is the sweep's own (`gate_fires`)."""

    needs_scores = True
    score_name = "gate"

    def fires(self, exit_index, logits, scores, state):
        if scores is None:
            raise ConfigError(
                "policy learned: the model has no exit gate (train it with recipe berxit)"
            )
        state["score"] = as_numpy(scores)
        return gate_fires(state["score"], self.knob)


POLICY = Policy(
    "learned",
    exits,
    grid,
    ("classification", "regression"),
    settings=SETTINGS,
    runtime=LearnedPolicy,
    never_fires=0.0,
    symbol="\\tau",
    knob="gate threshold",
    digits=3,
    rule="at the first layer $i$ whose learned gate predicts a correct answer, "
    "$u_i = \\sigma(w^\\top h_i + b) < \\tau$",
    needs_scores=True,
)
