"""PABEE, "BERT loses patience" (Zhou et al., NeurIPS 2020): joint training, patience exits.

One stage; the loss is the layer-weighted average L = sum_i i*L_i / sum_i i, where
i is the exit's layer number (JetRunner/PABEE, `modeling_bert.py`). Exit heads: one
*shared* pooler (the model's pre-trained pooler) -> dropout -> a linear head per
layer. Exit criterion: stop once t consecutive exits agree on the argmax
(regression: once the prediction changes by less than tau, t times in a row).
"""

from __future__ import annotations

from early_exit.recipes.losses import RecipeContext, exit_losses
from early_exit.support.errors import ConfigError
from early_exit.training.settings import TrainingSettings
from early_exit.training.stage import Stage

# What the deck and the tables say about this recipe (one place: read, never copied).
TITLE = "PABEE"
PAPER = "Zhou et al., NeurIPS 2020"
SUMMARY = "joint training, each exit's loss weighted by its layer index; one shared pooler"
STATIC = False  # has exits below the last layer
CRITERION = "patience"  # the exit policy the paper uses
HEAD = "shared_pooler"


def check(exit_layers: list[int], num_layers: int) -> None:
    if len(exit_layers) < 2:
        raise ConfigError(f"exit_layers: PABEE needs at least two exits; got {exit_layers}")


def stages(training: TrainingSettings, ctx: RecipeContext) -> list[Stage]:
    import torch  # not at module level: see early_exit.recipes.losses

    weights = torch.tensor(ctx.exit_layers, dtype=torch.float32)

    def loss(logits, labels):
        per_exit = exit_losses(logits, labels, ctx.task_type)
        w = weights.to(per_exit.device)
        return (w * per_exit).sum() / w.sum()

    return [Stage("pabee", loss, training.epochs, training.learning_rate)]
