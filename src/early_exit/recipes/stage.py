"""One training stage: what is trained, with which loss, for how long."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

# loss(logits [batch, n_exits, n_labels], labels [batch]) -> scalar
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def everything(name: str) -> bool:
    return True


@dataclass
class Stage:
    name: str
    loss: LossFn
    epochs: int
    learning_rate: float
    trainable: Callable[[str], bool] = everything  # parameter name -> is it optimised?
