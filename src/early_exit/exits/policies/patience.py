"""PABEE's patience policy: exit once t consecutive exits agree on the answer.

Classification: exits agree when their argmax is the same. Regression: when the
prediction changes by less than `tau` (an option of this policy, 0.1 by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from early_exit.exits.policies.base import Outputs, Policy, RuntimePolicy, as_numpy, first_true
from early_exit.support.errors import ConfigError

TAU = 0.1  # regression: a change below tau counts as agreement


def _streaks(same: np.ndarray) -> np.ndarray:
    """Length of the run of consecutive True values ending at each position (last axis)."""
    streak = np.zeros(same.shape, dtype=np.int64)
    run = np.zeros(same.shape[:-1], dtype=np.int64)
    for i in range(same.shape[-1]):
        run = np.where(same[..., i], run + 1, 0)
        streak[..., i] = run
    return streak


def agrees(previous: np.ndarray, current: np.ndarray, task_type: str, tau: float) -> np.ndarray:
    """PABEE's agreement of consecutive exits (logits [..., C]): same argmax, or for
    regression |z_i - z_{i-1}| < tau."""
    if task_type == "regression":
        return np.abs(current[..., 0] - previous[..., 0]) < tau
    return current.argmax(-1) == previous.argmax(-1)


def exits(out: Outputs, patience: np.ndarray, tau: float = TAU) -> np.ndarray:
    """PABEE: exit at the first exit where the counter of agreeing exits reaches t.

    Classification: the counter grows when exit i's argmax equals exit i-1's and
    resets otherwise. Regression: it grows when |z_i - z_{i-1}| < tau. So the
    earliest possible exit is index t (layer t+1 with exits at every layer).
    """
    z = out.logits
    same = agrees(z[:, :-1], z[:, 1:], out.task_type, tau)  # [N, E-1]
    counter = np.concatenate([np.zeros((len(z), 1), np.int64), _streaks(same)], axis=1)
    return first_true(counter[None, :, :] >= np.asarray(patience)[:, None, None])


def grid(out: Outputs, cfg: dict) -> np.ndarray:
    """Patience values 1..E-1 (E-1 = the full model), or the configured list."""
    values = cfg.get("values", "all")
    if values == "all":
        return np.arange(1, out.n_exits)
    return np.asarray(values)


def check_values(cfg: dict, n_exits: int) -> None:
    """The configured patience values must be reachable with `n_exits` exits."""
    values = cfg.get("values", "all")
    if values != "all":
        bad = [t for t in values if not 1 <= t <= n_exits - 1]
        if bad:
            raise ConfigError(
                f"patience {bad} impossible with {n_exits} exits; allowed: 1..{n_exits - 1}"
            )


def whole_number(knob) -> int:
    """A patience is a count of exits: a whole number >= 1."""
    if float(knob) != int(knob) or knob < 1:
        raise ConfigError(f"patience: {knob!r} is not a whole number >= 1")
    return int(knob)


@dataclass
class PatiencePolicy(RuntimePolicy):
    """PABEE: fires when the counter of consecutive agreeing exits reaches t."""

    tau: float = TAU
    score_name = "patience_counter"

    def __post_init__(self):
        self.tau = float(self.tau)

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


POLICY = Policy(
    "patience",
    exits,
    grid,
    ("classification", "regression"),
    settings={
        "values": {
            "description": "patience values t (1..exits-1), or all",
            "oneOf": [
                {"const": "all"},
                {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1},
            ],
            "default": "all",
        },
        "tau": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": TAU,
            "description": "regression only - a change below tau counts as agreement",
        },
    },
    options=("tau",),
    runtime=PatiencePolicy,
    runtime_knob=whole_number,
    never_fires=10**6,
    check=check_values,
    symbol="t",
    knob="patience",
    digits=0,
    rule="once $t$ consecutive exits agree on the answer",
)
