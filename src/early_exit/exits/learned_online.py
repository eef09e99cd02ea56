"""The learned exit (BERxiT's gate) in runtime form, for the early-exit engine.

The engine asks each runtime policy, exit by exit, which of the rows still running
leave now. Interface (shared with the other runtime policies): built from
(policy name, knob value, temperatures, task type, options); `start(n_rows)` returns
a state; `fires(exit_index, logits_i [n, C], scores_i [n] or None, state)` returns a
bool mask [n] of the rows that exit here; `keep(state, mask)` drops the rows that
left. The learned rule has no memory across exits, so its state is only the row
count; the rule itself is `early_exit.exits.policies.gate_fires`, the one the sweep
uses, so the engine and the stored-output simulation cannot disagree.
"""

from __future__ import annotations

import numpy as np

from early_exit.errors import ConfigError
from early_exit.exits.policies import gate_fires


class LearnedRuntime:
    """Exit where the learned gate's output u_i is below the threshold tau."""

    name = "learned"

    def __init__(
        self,
        name: str,
        knob: float,
        temperatures=None,
        task_type: str = "classification",
        options: dict | None = None,
    ):
        if name != self.name:
            raise ConfigError(f"policy: {name!r} is not the learned policy")
        self.threshold = float(knob)
        self.task_type = task_type

    def start(self, n_rows: int) -> dict:
        return {"rows": n_rows}

    def fires(self, exit_index: int, logits_i, scores_i, state: dict) -> np.ndarray:
        if scores_i is None:
            raise ConfigError(
                "policy learned: the model has no exit gate (train it with recipe berxit)"
            )
        scores = np.asarray(scores_i.detach().cpu() if hasattr(scores_i, "detach") else scores_i)
        return gate_fires(scores, self.threshold)

    def keep(self, state: dict, mask: np.ndarray) -> dict:
        state["rows"] = int(np.count_nonzero(mask))
        return state
