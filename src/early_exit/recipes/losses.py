"""The losses recipes build their stages from, and the context they depend on.

The stage itself (what the loop trains) is `early_exit.training.stage.Stage`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from early_exit.support.errors import ConfigError
from early_exit.training.stage import LossFn

# torch is imported where losses are computed, not here: the workflow imports the recipes
# to check a config, and that must not cost a torch import at every start and cluster job.
if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class RecipeContext:
    """What a recipe's losses depend on besides the logits."""

    task_type: str  # classification | regression
    exit_layers: tuple[int, ...]


def exit_losses(logits: torch.Tensor, labels: torch.Tensor, task_type: str) -> torch.Tensor:
    """Mean loss of every exit, shape [n_exits]: cross-entropy, or MSE for regression."""
    import torch.nn.functional as F

    if task_type == "regression":
        return ((logits[..., 0] - labels.to(logits.dtype)[:, None]) ** 2).mean(0)
    n_exits = logits.shape[1]
    per_example = F.cross_entropy(
        logits.transpose(1, 2), labels[:, None].expand(-1, n_exits), reduction="none"
    )  # [batch, n_exits]
    return per_example.mean(0)


def head_params(exit_indices: set[int]) -> Callable[[str], bool]:
    """Predicate selecting the exit-head parameters (pooler, classifier, mix) of some exits."""

    def selected(name: str) -> bool:
        parts = name.split(".")
        return parts[0] in ("poolers", "classifiers", "mix") and int(parts[1]) in exit_indices

    return selected


def summed_exit_losses(ctx: RecipeContext) -> LossFn:
    """L = sum_i L_i: the unweighted joint loss (Sledgehammer, ElasticBERT, baselines)."""

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return exit_losses(logits, labels, ctx.task_type).sum()

    return loss


def check_internal_and_final_exits(paper: str, exit_layers: list[int], num_layers: int) -> None:
    """DeeBERT and BERxiT train internal exits beside a final classifier on the last layer."""
    if exit_layers[-1] != num_layers or len(exit_layers) < 2:
        raise ConfigError(
            f"exit_layers: {paper} needs internal exits and the final classifier at the last "
            f"layer ({num_layers}); got {exit_layers}"
        )
