"""What a model job is given: one typed run specification instead of positional arguments."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from early_exit.training.settings import TrainingSettings


@dataclass(frozen=True)
class RunSpec:
    """One model job: the data it trains on, where it writes, and how it trains.

    `method` is the method instance of the config (its recipe and the recipe's own
    settings, e.g. `slenderize` or `pretrain`); `training` the merged training settings as
    the rule gives them (typed once: `settings`).
    `state_dir`: where a resumable job keeps its resume state (None: restarts).
    `first_stage`: a run that already trained this recipe's first stage (DeeBERT).
    `teacher`: the trained model a slenderized method (COST-EFF) starts from.
    """

    data_dir: Path
    out_dir: Path
    backbone: dict
    method: dict
    training: dict
    seed: int
    device: str = "auto"
    threads: int | None = None
    state_dir: Path | None = None
    first_stage: Path | None = None
    teacher: Path | None = None

    @cached_property
    def settings(self) -> TrainingSettings:
        """The training settings, typed (built once, from `training`)."""
        return TrainingSettings.from_config(self.training)

    @classmethod
    def from_snakemake(cls, smk, out_dir: str) -> RunSpec:
        """The spec of a rule's job (`snakemake` of a script directive): its params
        `data_dir`, `backbone`, `method`, `training`, `device` and, where the rule has
        them, `state_dir`, `first_stage` and the input `teacher`."""
        p = smk.params

        def optional(value) -> Path | None:
            return Path(value) if value else None

        return cls(
            data_dir=Path(p.data_dir),
            out_dir=Path(out_dir),
            backbone=p.backbone,
            method=p.method,
            training=p.training,
            seed=int(smk.wildcards.seed),
            device=p.device,
            threads=smk.threads,
            state_dir=optional(getattr(p, "state_dir", None)),
            first_stage=optional(getattr(p, "first_stage", None)),
            teacher=optional(getattr(smk.input, "teacher", None)),
        )
