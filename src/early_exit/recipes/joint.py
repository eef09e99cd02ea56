"""Joint training: every exit's loss summed with equal weight, one stage.

The simplest multi-exit recipe (the common core of Sledgehammer and ElasticBERT
fine-tuning, without their extras): L = sum_i CE(z_i, y).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from early_exit.recipes.stage import Stage

HEAD = "pooler"


def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Unweighted sum over exits of the mean cross-entropy."""
    n_exits = logits.shape[1]
    return sum(F.cross_entropy(logits[:, i], labels) for i in range(n_exits))


def stages(training: dict) -> list[Stage]:
    return [Stage("joint", loss, training["epochs"], training["learning_rate"])]
