"""Does the engine exit where the stored outputs say? Its exits and answers against the
simulation's, example by example.

The sweeps, the operating points and the results tables *simulate* exiting from the
stored outputs of one full-depth pass (`exits.stored`); the engine exits for real. Both
decide with the same policy functions, but floating-point results differ slightly between
batch shapes, fused and unfused layers, and torch and ONNX Runtime. So an example may
differ only where the stored outputs put it within `tolerance` of a decision: a deciding
score that close to the knob (or an option such as patience's tau), or top two logits
that close (an argmax that may flip). Such near-knob differences are counted and bounded
(at most `max_tolerated` of the examples); any other difference, or more of them, is an
engine that does not do what the tables say, and `Agreement.check` raises a DataError
naming the run. The exactness tests (tests/helpers/exactness.py) use the same
`near_knob`, found without naming a policy: an example is near the knob when its
simulated exit moves as the knob (or a numeric option) moves by `tolerance` either way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from early_exit.exits.policies import Outputs, get_policy
from early_exit.exits.sweep import decide
from early_exit.support.errors import ConfigError, DataError

TOLERANCE = 1e-5  # a score this close to a decision may land on either side of it
MAX_TOLERATED = 0.01  # near-knob differences allowed, as a share of the examples


@dataclass
class Agreement:
    """One engine's decisions at one knob against the simulation's on the same examples."""

    examples: int
    differ: int  # exit layer or answer differs from the simulation's
    tolerated: int  # of those, examples near the knob
    stored_exits: np.ndarray  # [N] the simulation's exit indices

    @property
    def away(self) -> int:
        """Differences with no score near the knob: never tolerated."""
        return self.differ - self.tolerated

    def check(self, what: str, max_tolerated: float = MAX_TOLERATED) -> None:
        """DataError when an example differs away from the knob, or when more than
        `max_tolerated` of the examples differ near it."""
        bound = int(np.floor(max_tolerated * self.examples))
        if self.away == 0 and self.tolerated <= bound:
            return
        raise DataError(
            f"{what}: the engine's exits or answers differ from the stored outputs' on "
            f"{self.differ} of {self.examples} test examples ({self.away} with no score near "
            f"the knob, none allowed; {self.tolerated} near it, at most {bound} = "
            f"{max_tolerated:.0%} allowed): the engine does not do what the results tables "
            "simulate; rerun rule train for this run (its model and stored outputs are "
            "written together); on hardware whose floats differ more between batch shapes "
            "(a GPU), latency.whole_split.tolerance and max_tolerated set the bound"
        )


def near_knob(
    out: Outputs,
    policy: str,
    knob: float,
    options: dict,
    last: np.ndarray,
    tolerance: float = TOLERANCE,
) -> np.ndarray:
    """[N] whether the simulated decision of each example is within `tolerance` of
    flipping: its exit moves when the knob or a numeric option moves by `tolerance` (a
    knob the runtime takes only in whole steps, patience's, does not move), or an exit up
    to `last` (per example) has its top two logits that close."""
    rule = get_policy(policy)
    n = out.logits.shape[0]
    near = np.zeros(n, dtype=bool)
    try:  # a knob that comes in whole steps (patience) has no values in between
        for value in (knob - tolerance, knob + tolerance):
            rule.runtime_knob(value)
        moved = rule.exits(out, np.array([knob - tolerance, knob + tolerance]), **options)
        near |= moved[0] != moved[1]
    except ConfigError:
        pass
    for key, value in options.items():
        if isinstance(value, float):
            low = rule.exits(out, np.array([knob]), **(options | {key: value - tolerance}))
            high = rule.exits(out, np.array([knob]), **(options | {key: value + tolerance}))
            near |= low[0] != high[0]
    if out.task_type != "regression" and out.logits.shape[-1] > 1:
        top2 = np.sort(out.logits, axis=-1)[..., -2:]
        tie = (top2[..., 1] - top2[..., 0]) < tolerance  # [N, E]
        upto = np.arange(out.n_exits)[None, :] <= last[:, None]
        near |= (tie & upto).any(1)
    return near


def compare(
    out: Outputs,
    policy: str,
    knob: float,
    options: dict,
    exit_index: np.ndarray,
    logits: np.ndarray,
    tolerance: float = TOLERANCE,
) -> Agreement:
    """The engine's exit indices and answering logits ([N], [N, C], input order) against
    the simulation of `policy` at `knob` (with its `options`) on the stored outputs `out`
    of the same examples."""
    if len(exit_index) != out.logits.shape[0]:
        raise DataError(
            f"the engine answered {len(exit_index)} examples, the stored outputs hold "
            f"{out.logits.shape[0]}: the prepared data and the stored outputs are of "
            "different splits; rerun rule train for this run"
        )
    stored = get_policy(policy).exits(out, np.array([knob]), **options)[0]
    predictions = decide(out, stored[None, :])[0]
    if out.task_type == "regression":
        same = np.abs(logits[:, 0] - predictions) < tolerance
    else:
        same = logits.argmax(-1) == predictions
    differ = (exit_index != stored) | ~same
    near = near_knob(out, policy, knob, options, np.maximum(exit_index, stored), tolerance)
    return Agreement(len(differ), int(differ.sum()), int((differ & near).sum()), stored)
