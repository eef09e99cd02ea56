"""The training loop's input contract: one stage of training.

Recipes (`early_exit.recipes`) build stages; the loop (`early_exit.training.loop`)
runs them in order, each with its own optimizer and schedule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

# torch is imported where losses are computed, not here: the workflow imports the recipes
# to check a config, and that must not cost a torch import at every start and cluster job.
if TYPE_CHECKING:
    import torch

# loss(logits [batch, n_exits, n_labels], labels [batch]) -> scalar
LossFn = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


def everything(name: str) -> bool:
    return True


@dataclass
class Stage:
    """One training stage: its loss, what it trains (by parameter name), how long, how fast.

    `step_loss(model, batch, step)`, when set, replaces the default
    `loss(model(**inputs).logits, labels)` (pre-training stages need more than logits).
    `frozen_encoder`: the stage trains exit heads only, on the encoder in eval mode, whose
    outputs are then computed once (`early_exit.training.frozen_encoder`).
    """

    name: str
    loss: LossFn | None
    epochs: int
    learning_rate: float
    trainable: Callable[[str], bool] = everything
    step_loss: Callable | None = None
    frozen_encoder: bool = False
