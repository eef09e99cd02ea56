"""An engine's exits and predictions against the sweep's decisions on the stored outputs.

Shared by the torch engine's and the ONNX Runtime engine's tests. Floating-point results
differ slightly between batch shapes (and between runtimes), so an example the stored
outputs put within TOL of a decision may differ: those are counted; every other example
must match exactly. Which examples are near the knob is the package's own rule, the one
the latency stage checks the engines with (`early_exit.inference.agreement.near_knob`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from early_exit.data.prepared import load_split
from early_exit.exits.policies import Outputs, get_policy
from early_exit.exits.stored import load_exit_logits
from early_exit.exits.sweep import decide, load_temperatures
from early_exit.inference.agreement import MAX_TOLERATED, near_knob
from early_exit.inference.agreement import TOLERANCE as TOL
from early_exit.training.batching import encode

GRIDS = {
    "entropy": {"num_thresholds": 11},
    "confidence": {"num_thresholds": 11},
    "patience": {"values": "all", "tau": 0.1},
    "learned": {"num_thresholds": 11},
}


@dataclass
class Comparison:
    """What one policy on one split, over its whole knob grid, gave."""

    decisions: int = 0  # examples x knob values compared
    tolerated: int = 0  # of those, near-knob examples that differ
    early: int = 0  # of those, decisions the sweep makes before the last exit
    # per knob value (in grid order, summed over the splits compared): the sweep's and the
    # engine's early exits
    sweep_early: list = field(default_factory=list)
    engine_early: list = field(default_factory=list)

    def __iadd__(self, other: Comparison) -> Comparison:
        self.decisions += other.decisions
        self.tolerated += other.tolerated
        self.early += other.early
        if not self.sweep_early:  # the first split compared
            self.sweep_early = [0] * len(other.sweep_early)
            self.engine_early = [0] * len(other.engine_early)
        pairs = zip(self.sweep_early, other.sweep_early, strict=True)
        self.sweep_early = [a + b for a, b in pairs]
        pairs = zip(self.engine_early, other.engine_early, strict=True)
        self.engine_early = [a + b for a, b in pairs]
        return self

    def check(
        self, what: str, max_tolerated: float = MAX_TOLERATED, n_examples: int | None = None
    ) -> None:
        """The near-knob exemptions are bounded (at most `max_tolerated` of the decisions),
        and early exits happen knob by knob: wherever the sweep says some example exits
        early, the engine exits that many early (up to the exemptions), and the grid is
        not vacuous (at least one knob has early exits; with `n_examples`, at least one
        knob sends some examples out early and keeps others)."""
        assert self.tolerated <= max_tolerated * self.decisions, (
            f"{what}: {self.tolerated} of {self.decisions} decisions differ near the knob, "
            f"more than {max_tolerated:.0%}"
        )
        for k, (sweep, engine) in enumerate(zip(self.sweep_early, self.engine_early, strict=True)):
            assert abs(sweep - engine) <= self.tolerated, (
                f"{what}: knob #{k}: the sweep exits {sweep} examples early, the engine {engine}"
            )
            if sweep:
                assert engine > 0, f"{what}: knob #{k}: the engine never exits early"
        assert sum(e > 0 for e in self.engine_early) >= 1, f"{what}: no knob exits early"
        if n_examples is not None:
            assert any(0 < e < n_examples for e in self.engine_early), (
                f"{what}: every knob sends all examples out early or none "
                f"({self.engine_early}): the data does not test the decision"
            )


def compare_with_sweep(engine, run, data_dir, split, policy, batch_size) -> Comparison:
    """Run `engine` over `split` at every knob of the policy's test grid; assert that every
    example not near the knob takes the sweep's exit and answer."""
    stored = load_exit_logits(run / "exit_logits.npz")
    temps = load_temperatures(run / "calibration.json")
    scores = stored.get(f"{split}_scores")  # the learned gate's outputs, when the model has one
    out = Outputs(
        stored[f"{split}_logits"], stored[f"{split}_labels"], engine.task_type, temps, scores
    )
    grid, sweep_exits = get_policy(policy).decide(out, GRIDS[policy])
    sweep_preds = decide(out, sweep_exits)
    data = encode(load_split(data_dir, split), engine.tokenizer, engine.max_length)
    options = {"tau": GRIDS[policy]["tau"]} if policy == "patience" else {}
    result = Comparison()
    for k, knob in enumerate(grid):
        rule = engine.policy(policy, knob, **options)
        got = engine.run(data.features, rule, batch_size)
        if engine.task_type == "regression":
            same_pred = np.abs(got.logits[:, 0] - sweep_preds[k]) < TOL
        else:
            same_pred = got.logits.argmax(-1) == sweep_preds[k]
        differs = (got.exit_index != sweep_exits[k]) | ~same_pred
        last = np.maximum(got.exit_index, sweep_exits[k])
        near = near_knob(out, policy, knob, options, last, TOL)
        assert not (differs & ~near).any(), (
            f"{policy}={knob} split {split} batch {batch_size}: examples "
            f"{np.flatnonzero(differs & ~near)} differ from the sweep although no score is near "
            "the knob"
        )
        result.decisions += len(differs)
        result.tolerated += int((differs & near).sum())
        result.early += int((sweep_exits[k] < out.n_exits - 1).sum())
        result.sweep_early.append(int((sweep_exits[k] < out.n_exits - 1).sum()))
        result.engine_early.append(int((got.exit_index < out.n_exits - 1).sum()))
    return result
