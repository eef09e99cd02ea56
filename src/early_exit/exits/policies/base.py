"""The contract a policy module fills in: what it sees (`Outputs`), what it declares
(`Policy`) and its runtime form (`RuntimePolicy`), plus the helpers every policy shares.

A policy decides twice, and both ways must agree bit for bit:

- vectorised, over stored logits (the sweeps): `Policy.exits(outputs, grid, **options)`
  maps the stored outputs of one split (logits [N, E, C] for N examples and E exits)
  and a grid of K knob values to the exit each example takes under each value, an index
  array [K, N]. The last exit answers whenever no earlier exit fires;
- at runtime, one exit at a time (the engine, `inference.engine`): `Policy.runtime` is a
  `RuntimePolicy` subclass with three methods

    start(n_rows)                               -> per-row state (a dict of arrays)
    fires(exit_index, logits, scores, state)    -> bool mask [n]; updates the state and
                                                   leaves the deciding score in state["score"]
    keep(state, mask)                           -> the state of the rows still running

  that scores with the same functions as the vectorised form, on the logits as float32
  numpy (`as_numpy`), as they are stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

# The knob-grid size shared by the threshold policies (entropy, confidence, learned):
# `sweep.policies.<name>.num_thresholds`, 41 values by default.
NUM_THRESHOLDS = {"num_thresholds": {"type": "integer", "minimum": 2, "default": 41}}


@dataclass
class Outputs:
    """What policies see of one split: stored logits, labels and calibration."""

    logits: np.ndarray  # [N, E, C]
    labels: np.ndarray  # [N]
    task_type: str = "classification"
    temperatures: np.ndarray | None = None  # [E], from calibration on dev
    scores: np.ndarray | None = None  # [N, E], a learned gate's per-exit outputs (if any)

    @property
    def n_exits(self) -> int:
        return self.logits.shape[1]


def first_true(fires: np.ndarray) -> np.ndarray:
    """Index of the first exit that fires along the last axis; the last exit if none does."""
    fires = fires.copy()
    fires[..., -1] = True
    return fires.argmax(-1)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """`scipy.special.log_softmax`, the same operations in the same order (so the same
    bits), without its array-API dispatch: that costs about 20 us a call, three times the
    arithmetic on one engine row, and the engine calls it once per exit and batch."""
    x_max = np.amax(x, axis=axis, keepdims=True)
    x_max[~np.isfinite(x_max)] = 0
    shifted = x - x_max
    with np.errstate(divide="ignore"):
        return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def as_numpy(logits) -> np.ndarray:
    """Exit logits as float32 numpy, exactly as the predict pass stores them."""
    if hasattr(logits, "detach"):
        logits = logits.detach().float().cpu().numpy()
    return np.asarray(logits, dtype=np.float32)


@dataclass
class RuntimePolicy:
    """Base of a runtime form: per-row state is a dict of arrays whose first axis is the row.

    Built as `runtime(knob, task_type, temperatures, **options)`; a policy with options
    (patience's tau) declares them as dataclass fields of its subclass."""

    knob: float
    task_type: str = "classification"
    temperatures: np.ndarray | None = None  # [E] float64, from calibration on dev
    needs_scores = False  # reads per-exit scores from the model (a learned exit gate)
    score_name = "score"  # what state["score"] holds, as answers name it

    def start(self, n_rows: int) -> dict[str, np.ndarray]:
        return {"score": np.zeros(n_rows)}

    def fires(self, exit_index: int, logits, scores, state: dict) -> np.ndarray:
        raise NotImplementedError

    def keep(self, state: dict, mask: np.ndarray) -> dict[str, np.ndarray]:
        return {key: value[mask] for key, value in state.items()}


@dataclass(frozen=True)
class Policy:
    """One exit policy: how it decides, what it is configured by, and how tables, figures
    and slides name its knob. Each policy module defines one, `POLICY`."""

    name: str
    exits: Callable[..., np.ndarray]  # (outputs, grid, **options) -> [K, N] exit indices
    grid: Callable[[Outputs, dict], np.ndarray]  # (outputs, its sweep settings) -> [K] knobs
    task_types: tuple[str, ...]
    # Its entry under sweep.policies in the config: key -> JSON-schema fragment (type,
    # bounds, default, description). Checked, and defaults filled in, when the workflow loads.
    settings: dict[str, dict] = field(default_factory=dict)
    # The settings that shape decisions beyond the knob (patience's tau): passed on to
    # `exits` and to `runtime`, and offered by `early-exit predict` as --<option>.
    options: tuple[str, ...] = ()
    runtime: type[RuntimePolicy] | None = None  # its runtime form; None: offline only (oracle)
    runtime_knob: Callable[[float], float] = float  # a knob value as the runtime form takes it
    never_fires: float | None = None  # a runtime knob at which no exit fires (benchmarks)
    check: Callable[[dict, int], None] | None = None  # (settings, number of exits): ConfigError
    symbol: str = "knob"  # the knob's symbol in the papers (LaTeX, without $)
    knob: str = "knob"  # the knob's name in words
    digits: int = 2  # decimals when a knob value is printed
    rule: str = ""  # when an example exits, in words (markdown + LaTeX)
    needs_scores: bool = False  # reads a learned gate's stored scores (not applicable without)
    # Reads the gold labels: an upper bound beside the curves, not a method's own policy
    # (tables list it beside each method's criterion, figures draw it apart).
    bound: bool = False
    calibrated: bool = False  # scores with the per-exit temperatures fitted on dev

    def applies(self, out: Outputs) -> bool:
        """Whether this run can use the policy (a learned one needs stored gate scores)."""
        return out.scores is not None or not self.needs_scores

    def format_knob(self, value: float) -> str:
        return f"{value:.{self.digits}f}"

    def option_values(self, cfg: dict) -> dict:
        """The options among a sweep.policies entry (the rest only shapes the grid)."""
        return {key: cfg[key] for key in self.options if key in cfg}

    def decide(self, out: Outputs, cfg: dict) -> tuple[np.ndarray, np.ndarray]:
        """The knob grid and the exit index of every example under every knob value."""
        grid = self.grid(out, cfg)
        return grid, self.exits(out, grid, **self.option_values(cfg))
