"""The training settings, typed: built once from the validated config, read by the loop.

The config's `training:` section (the global one, a method's own and its per-task
overrides, merged by `early_exit.recipes.configured_methods.training_settings`) reaches a
job as a dict; the job builds a `TrainingSettings` from it once, and the recipes, the loop
and COST-EFF's phases read its fields. The defaults below are the one place they are
written: the schema's `default:` values (workflow/schemas/config.schema.yaml) are checked
against them by tests/architecture/test_one_place.py.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from early_exit.support.errors import ConfigError


@dataclass(frozen=True)
class TrainingSettings:
    """How a model trains: one per run, the same for every stage of its recipe."""

    epochs: int
    """Epochs per stage (a stage may scale it, e.g. DeeBERT's highways)."""
    batch_size: int
    """Training examples per optimizer step."""
    learning_rate: float
    """AdamW's peak learning rate (a stage may scale it)."""
    weight_decay: float = 0.01
    """AdamW weight decay; biases and LayerNorm weights get none."""
    warmup_ratio: float = 0.1
    """Share of a stage's steps with linear warmup (linear schedule only)."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this global norm before every step."""
    bucket_batches: int = 20
    """Batches per length-sorting chunk of an epoch (1 = no bucketing)."""
    checkpoint_every: int = 200
    """Save a resumable training state every N steps (0 = only at epoch and stage ends)."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """bf16: autocast where the device computes bf16 natively (else fp32, logged)."""
    schedule: Literal["linear", "constant"] = "linear"
    """Learning-rate schedule: linear warmup and decay, or constant (no warmup). No schema
    default: a recipe's paper setting (Sledgehammer: constant) must win over the global one."""
    given: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The section as the config gave it: recorded with the model and part of the run's
    fingerprint, so a default added here later does not make a trained run stale."""

    @classmethod
    def from_config(cls, section: dict) -> TrainingSettings:
        """The settings of a (validated, merged) `training:` section; one-line ConfigError
        naming an unknown or missing key (a test's or script's hand-written section)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"given"}
        unknown = sorted(set(section) - names)
        if unknown:
            raise ConfigError(f"training.{unknown[0]}: unknown setting; allowed: {sorted(names)}")
        missing = [n for n in ("epochs", "batch_size", "learning_rate") if n not in section]
        if missing:
            raise ConfigError(f"training.{missing[0]}: required setting missing")
        return cls(**section, given=dict(section))

    def replace(self, **changes) -> TrainingSettings:
        """These settings with `changes` (e.g. a pre-training's own epochs and batch size)."""
        return dataclasses.replace(self, **changes)
