"""Joint training: every exit's loss summed with equal weight, one stage.

L = sum_i L_i. The common core of Sledgehammer and ElasticBERT fine-tuning,
without their extras; a useful reference recipe.
"""

from __future__ import annotations

from early_exit.recipes.losses import RecipeContext, summed_exit_losses
from early_exit.training.settings import TrainingSettings
from early_exit.training.stage import Stage

# What the deck and the tables say about this recipe (one place: read, never copied).
TITLE = "Joint training"
PAPER = "reference recipe"
SUMMARY = "the sum of every exit's loss"
STATIC = False  # has exits below the last layer
CRITERION = "entropy"  # the exit policy the paper uses
HEAD = "pooler"


def stages(training: TrainingSettings, ctx: RecipeContext) -> list[Stage]:
    return [Stage("joint", summed_exit_losses(ctx), training.epochs, training.learning_rate)]
