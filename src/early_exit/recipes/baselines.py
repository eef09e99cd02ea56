"""Baselines: plain fine-tuning (final exit only) and static models truncated to k layers.

`finetune` is ordinary BERT fine-tuning: pooler -> dropout -> linear on the last
layer. `static` keeps only the first k layers and one head on layer k, fine-tuned
separately for each k; their (FLOPs, score) points form the reference curve of the
ELUE score (ElasticBERT's static use, `num_hidden_layers=k, num_output_layers=1`).
"""

from __future__ import annotations

from early_exit.errors import ConfigError
from early_exit.recipes.stage import RecipeContext, Stage, summed_exit_losses

HEAD = "pooler"


def check(exit_layers: list[int], num_layers: int) -> None:
    if len(exit_layers) != 1:
        raise ConfigError(f"exit_layers: a baseline has exactly one exit; got {exit_layers}")


def stages(training: dict, ctx: RecipeContext) -> list[Stage]:
    return [
        Stage("single-exit", summed_exit_losses(ctx), training["epochs"], training["learning_rate"])
    ]
