"""Stages that train exit heads on a frozen encoder (DeeBERT's second stage).

The encoder runs in eval mode, so every exit's input (`MultiExitModel.exit_inputs`,
the pooled vector of its layer) is a fixed function of the text: it is computed once
per stage instead of at every step of every epoch, and the heads (pooler, dropout,
classifier) train on those vectors. When the vectors of the whole training split would
not fit in `runtime.CACHE_LIMIT_BYTES` (MNLI with eleven BERT-base exits needs 13 GB), each batch
computes its own: the same numbers, more time.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager

import numpy as np
import torch

from early_exit.training import runtime
from early_exit.training.batching import Collator, Encoded, inference_batches, model_inputs

log = logging.getLogger(__name__)


def check_frozen(model, stage) -> None:
    """A frozen-encoder stage must not train the encoder (it would train on stale vectors)."""
    trained = [
        n for n, _ in model.named_parameters() if n.startswith("encoder.") and stage.trainable(n)
    ]
    if trained:
        raise ValueError(f"stage {stage.name}: frozen encoder, yet it trains {trained[0]}")


class ExitInputCollator:
    """Batches of cached exit inputs with their labels, by example index."""

    def __init__(self, inputs: torch.Tensor, collate: Collator):
        self.inputs = inputs
        self.labels = collate.data.labels
        self.label_dtype = collate.label_dtype

    def __call__(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        return {
            "exit_inputs": self.inputs[torch.as_tensor(indices)],
            "labels": torch.as_tensor(self.labels[indices], dtype=self.label_dtype),
        }


@torch.no_grad()
def compute_exit_inputs(
    model, data: Encoded, collate: Collator, device: torch.device, batch_size: int
) -> torch.Tensor:
    """Every training example's exit inputs, [examples, n_exits, hidden] on the CPU."""
    out = torch.empty(len(data), len(model.exit_layers), model.stack.hidden_size)
    for indices, batch in inference_batches(collate, data.lengths, batch_size, device):
        out[torch.as_tensor(indices)] = model.exit_inputs(**batch).float().cpu()
    return out


def frozen_collator(
    model,
    data: Encoded,
    collate: Collator,
    device: torch.device,
    batch_size: int,
    precision: AbstractContextManager,
):
    """The stage's collator: cached exit inputs when they fit, else `collate` (per batch).
    `precision` is the training steps' autocast, so both ways give the same vectors."""
    size = len(data) * len(model.exit_layers) * model.stack.hidden_size * 4
    if size > runtime.CACHE_LIMIT_BYTES:
        log.info("exit inputs (%.1f GB) computed per batch: too large to cache", size / 1e9)
        return collate
    with precision:
        inputs = compute_exit_inputs(model, data, collate, device, batch_size)
    return ExitInputCollator(inputs, collate)


def frozen_logits(model, batch: dict) -> torch.Tensor:
    """Every exit's logits from a batch of cached exit inputs or of tokens."""
    inputs = batch.get("exit_inputs")
    if inputs is None:
        with torch.no_grad():
            inputs = model.exit_inputs(**model_inputs(batch))
    return model.from_exit_inputs(inputs).logits
