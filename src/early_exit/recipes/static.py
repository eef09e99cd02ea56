"""Static baselines: the backbone truncated to its first k layers, fine-tuned for each k.

`static` keeps only the first k layers and one head on layer k (pooler -> dropout ->
linear), fine-tuned separately for each k; their (FLOPs, score) points form the
reference curve of the ELUE score (ElasticBERT's static use, `num_hidden_layers=k,
num_output_layers=1`).
"""

from __future__ import annotations

from early_exit.recipes.losses import RecipeContext, summed_exit_losses
from early_exit.support.errors import ConfigError
from early_exit.training.settings import TrainingSettings
from early_exit.training.stage import Stage

TITLE = "Static k layers"
PAPER = "Liu et al., NAACL 2022 (ELUE)"
SUMMARY = "the first k layers and one head on layer k, fine-tuned separately for each k"
STATIC = True  # a single exit: no knob
REFERENCE_CURVE = True  # the k = 1..L models of one backbone form its ELUE reference curve
HEAD = "pooler"


def check(exit_layers: list[int], num_layers: int) -> None:
    if len(exit_layers) != 1:
        raise ConfigError(f"exit_layers: a baseline has exactly one exit; got {exit_layers}")


def single_exit_stage(training: TrainingSettings, ctx: RecipeContext) -> Stage:
    return Stage("single-exit", summed_exit_losses(ctx), training.epochs, training.learning_rate)


def stages(training: TrainingSettings, ctx: RecipeContext) -> list[Stage]:
    return [single_exit_stage(training, ctx)]
