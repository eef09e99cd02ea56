"""An engine's exits and predictions against the sweep's decisions on the stored outputs.

Shared by the torch engine's and the ONNX Runtime engine's tests. Floating-point results
differ slightly between batch shapes (and between runtimes), so an example whose
deciding score lies within TOL of the knob (or whose top two logits are within TOL, for
argmax decisions) may differ: those are counted; every other example must match exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from early_exit.data.prepared import load_split
from early_exit.exits.policies import Outputs, get_policy
from early_exit.exits.policies.confidence import calibrated_confidence
from early_exit.exits.policies.entropy import entropy
from early_exit.exits.stored import load_exit_logits
from early_exit.exits.sweep import decide, load_temperatures
from early_exit.training.batching import encode

TOL = 1e-5
GRIDS = {
    "entropy": {"num_thresholds": 11},
    "confidence": {"num_thresholds": 11},
    "patience": {"values": "all", "tau": 0.1},
    "learned": {"num_thresholds": 11},
}


def near_knob(policy, logits, knob, temps, last, tau=0.1, scores=None):
    """[N] whether any exit up to `last` (per example) decides within TOL of the knob,
    or has its top two logits within TOL (an argmax that may flip)."""
    n, n_exits = logits.shape[:2]
    upto = np.arange(n_exits)[None, :] <= last[:, None]
    if logits.shape[-1] > 1:
        top2 = np.sort(logits, axis=-1)[..., -2:]
        close = (top2[..., 1] - top2[..., 0]) < TOL
    else:
        close = np.zeros((n, n_exits), dtype=bool)
    if policy == "entropy":
        close |= np.abs(entropy(logits) - knob) < TOL
    elif policy == "confidence":
        close |= np.abs(calibrated_confidence(logits, temps) - knob) < TOL
    elif policy == "learned":
        close |= np.abs(scores - knob) < TOL
    elif logits.shape[-1] == 1:  # regression patience: |z_i - z_{i-1}| against tau
        diffs = np.abs(np.diff(logits[..., 0], axis=1))
        close[:, 1:] |= np.abs(diffs - tau) < TOL
    return (close & upto).any(1)


@dataclass
class Comparison:
    """What one policy on one split, over its whole knob grid, gave."""

    decisions: int = 0  # examples x knob values compared
    tolerated: int = 0  # of those, near-knob examples that differ
    early: int = 0  # of those, decisions the sweep makes before the last exit

    def __iadd__(self, other: Comparison) -> Comparison:
        self.decisions += other.decisions
        self.tolerated += other.tolerated
        self.early += other.early
        return self


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
        temp = temps if policy == "confidence" else 1
        near = near_knob(policy, out.logits, knob, temp, last, scores=scores)
        assert not (differs & ~near).any(), (
            f"{policy}={knob} split {split} batch {batch_size}: examples "
            f"{np.flatnonzero(differs & ~near)} differ from the sweep although no score is near "
            "the knob"
        )
        result += Comparison(
            len(differs),
            int((differs & near).sum()),
            int((sweep_exits[k] < out.n_exits - 1).sum()),
        )
    return result
