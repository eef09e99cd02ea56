"""Exit policies in their runtime (online) form: decide exit by exit, as a forward pass runs.

`exits.policies` decides from the stored logits of every exit at once; the early-exit
engine (`inference.engine`) sees one exit at a time and must stop a row as soon as its
policy fires. A runtime policy is built from (policy name, knob value, temperatures,
task type, options) and has three methods:

  start(n_rows)                               -> per-row state (a dict of arrays)
  fires(exit_index, logits, scores, state)    -> bool mask [n]; updates the state and
                                                 leaves the deciding score in state["score"]
  keep(state, mask)                           -> the state of the rows still running

Each one scores with the same functions as its vectorised twin (`entropy`,
`calibrated_confidence`, `agrees`, on the logits as float32 numpy, as they are stored),
so simulation from stored logits and real early exiting make the same decisions; the
tests check that. The oracle needs the labels and is not a runtime policy. A policy
that needs per-exit scores from the model (e.g. a learned exit gate) sets
`needs_scores` and receives them through the same `fires` call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from early_exit.exits.policies import (
    agrees,
    calibrated_confidence,
    check_policy,
    entropy,
    gate_fires,
)
from early_exit.support.errors import ConfigError


def as_numpy(logits) -> np.ndarray:
    """Exit logits as float32 numpy, exactly as the predict pass stores them."""
    if hasattr(logits, "detach"):
        logits = logits.detach().float().cpu().numpy()
    return np.asarray(logits, dtype=np.float32)


@dataclass
class RuntimePolicy:
    """Base: per-row state is a dict of arrays whose first axis is the row."""

    knob: float
    task_type: str = "classification"
    needs_scores = False
    score_name = "score"

    def start(self, n_rows: int) -> dict[str, np.ndarray]:
        return {"score": np.zeros(n_rows)}

    def fires(self, exit_index: int, logits, scores, state: dict) -> np.ndarray:
        raise NotImplementedError

    def keep(self, state: dict, mask: np.ndarray) -> dict[str, np.ndarray]:
        return {key: value[mask] for key, value in state.items()}


@dataclass
class EntropyPolicy(RuntimePolicy):
    """DeeBERT: fires when H(softmax(z_i)) < S."""

    score_name = "entropy"

    def fires(self, exit_index, logits, scores, state):
        state["score"] = entropy(as_numpy(logits))
        return state["score"] < self.knob


@dataclass
class ConfidencePolicy(RuntimePolicy):
    """Sledgehammer: fires when max softmax(z_i / T_i) >= c (T fitted on dev)."""

    temperatures: np.ndarray | None = None
    score_name = "confidence"

    def fires(self, exit_index, logits, scores, state):
        temp = 1.0 if self.temperatures is None else self.temperatures[exit_index]
        state["score"] = calibrated_confidence(as_numpy(logits), np.float64(temp))
        return state["score"] >= self.knob


@dataclass
class PatiencePolicy(RuntimePolicy):
    """PABEE: fires when the counter of consecutive agreeing exits reaches t."""

    tau: float = 0.1
    score_name = "patience_counter"

    def start(self, n_rows):
        return {"score": np.zeros(n_rows, dtype=np.int64), "previous": None}

    def fires(self, exit_index, logits, scores, state):
        z = as_numpy(logits)
        if exit_index > 0:
            same = agrees(state["previous"], z, self.task_type, self.tau)
            state["score"] = np.where(same, state["score"] + 1, 0)
        state["previous"] = z
        return state["score"] >= self.knob

    def keep(self, state, mask):
        previous = state["previous"]
        return {
            "score": state["score"][mask],
            "previous": None if previous is None else previous[mask],
        }


@dataclass
class LearnedPolicy(RuntimePolicy):
    """BERxiT: fires when the learned exit gate's output u_i is below tau. The gate's
    outputs come from the model (`MultiExitModel.gate_score`), as the predict pass stores
    them; the rule is the sweep's own (`policies.gate_fires`)."""

    needs_scores = True
    score_name = "gate"

    def fires(self, exit_index, logits, scores, state):
        if scores is None:
            raise ConfigError(
                "policy learned: the model has no exit gate (train it with recipe berxit)"
            )
        state["score"] = as_numpy(scores)
        return gate_fires(state["score"], self.knob)


RUNTIME = {
    "entropy": EntropyPolicy,
    "confidence": ConfidencePolicy,
    "patience": PatiencePolicy,
    "learned": LearnedPolicy,
}


def runtime_policy(
    name: str,
    knob: float,
    task_type: str = "classification",
    temperatures: np.ndarray | None = None,
    options: dict | None = None,
) -> RuntimePolicy:
    """The runtime form of policy `name` at knob value `knob`."""
    check_runtime(name, task_type)
    options = options or {}
    if name == "confidence":
        temps = None if temperatures is None else np.asarray(temperatures, dtype=np.float64)
        return ConfidencePolicy(float(knob), task_type, temps)
    if name == "patience":
        if float(knob) != int(knob) or knob < 1:
            raise ConfigError(f"patience: {knob!r} is not a whole number >= 1")
        return PatiencePolicy(int(knob), task_type, float(options.get("tau", 0.1)))
    return RUNTIME[name](float(knob), task_type)


def check_runtime(name: str, task_type: str) -> None:
    """ConfigError unless `name` is a runtime policy that applies to `task_type`."""
    if name == "oracle":
        raise ConfigError(
            "policy 'oracle' needs the gold labels: it is an upper bound, not a runtime policy"
        )
    if name not in RUNTIME:
        allowed = ", ".join(sorted(RUNTIME))
        raise ConfigError(f"policy: unknown runtime policy {name!r}; allowed: {allowed}")
    check_policy(name, task_type)
