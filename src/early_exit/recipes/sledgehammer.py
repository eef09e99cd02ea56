"""Sledgehammer, "The Right Tool for the Job" (Schwartz et al., ACL 2020).

Exits at a chosen subset of layers (the paper: 4 exits on BERT-large; the README
example `0_3_5_11` on BERT-base, 0-based). Each exit classifies a weighted sum of
the pooled [CLS] representations of all layers up to its own (one shared pooler ->
dropout -> weighted sum -> linear). Joint training with the unweighted sum of exit
losses; afterwards one temperature per exit is fitted on dev by minimising NLL
(`early_exit.exits.calibration`), and an example exits at the first exit whose
calibrated confidence max softmax(z_i / T_i) reaches c. The released training config
uses Adam with a constant learning rate (no warmup, no decay), so this recipe's
default schedule is constant (`TRAINING`; `training: {schedule: linear}` overrides it).

Deviation from the released code, on purpose: allennlp_overrides' multiloss BERT
re-wraps the layer-mixing weights in new `nn.Parameter`s after every forward pass,
so the optimizer never updates them (they stay at their random, L2-normalised
init). Here the weights are ordinary parameters and are learned.
"""

from __future__ import annotations

from early_exit.recipes.losses import RecipeContext, summed_exit_losses
from early_exit.training.settings import TrainingSettings
from early_exit.training.stage import Stage

# What the deck and the tables say about this recipe (one place: read, never copied).
TITLE = "Sledgehammer"
PAPER = "Schwartz et al., ACL 2020"
SUMMARY = (
    "joint training of exits on a subset of layers, each mixing the layers below it; "
    "one temperature per exit fitted on dev"
)
STATIC = False  # has exits below the last layer
TRAINING = {"schedule": "constant"}  # allenai/sledgehammer: Adam, no schedule
CRITERION = "confidence"  # the exit policy the paper uses
HEAD = "layer_mix"


def stages(training: TrainingSettings, ctx: RecipeContext) -> list[Stage]:
    return [Stage("sledgehammer", summed_exit_losses(ctx), training.epochs, training.learning_rate)]
