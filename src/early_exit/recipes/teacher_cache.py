"""A fixed teacher's outputs for every training example, computed once (COST-EFF).

From the end of its own training the teaching assistant is fixed (eval mode, no
dropout), and the pruning periods, the importance passes and the final distillation
read its logits and hidden states for about 2.5 epochs of batches. Each example's
outputs are computed once, kept without padding, and gathered by example index; a
batch pads them again with zeros, which `hidden_mse` masks out. When they would not
fit in `runtime.CACHE_LIMIT_BYTES` (paper scale), or the tokenizer pads on the left,
the teacher runs on every batch instead: the same numbers, more time.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
import torch

from early_exit.training import runtime
from early_exit.training.batching import INDEX, Collator, inference_batches

log = logging.getLogger(__name__)


@dataclass
class TeacherOutputs:
    logits: torch.Tensor  # [batch, exits, labels]
    hidden_states: list[torch.Tensor]  # embeddings, then every layer: [batch, seq, hidden]


class TeacherCache:
    """Every training example's teacher outputs: logits [N, E, C], hidden states per
    example [layers + 1, its length, hidden]."""

    def __init__(self, logits: torch.Tensor, hidden: list[torch.Tensor]):
        self.logits, self.hidden = logits, hidden

    @classmethod
    @torch.no_grad()
    def build(
        cls,
        teacher,
        collate: Collator,
        lengths: np.ndarray,
        batch_size: int,
        device: torch.device,
        precision: AbstractContextManager,
    ) -> TeacherCache | None:
        """Run `teacher` once over the training split; None when the cache cannot be kept.
        `precision` is the training steps' autocast, so a batch gets what its step would."""
        layers = teacher.num_layers + 1
        size = int(lengths.sum()) * layers * teacher.stack.hidden_size * 4
        if size > runtime.CACHE_LIMIT_BYTES or collate.pad.tokenizer.padding_side != "right":
            log.info("teacher outputs (%.1f GB) computed per batch", size / 1e9)
            return None
        teacher.eval()
        logits, hidden = None, [None] * len(lengths)
        for indices, batch in inference_batches(collate, lengths, batch_size, device):
            with precision:
                out = teacher(**batch, output_hidden_states=True)
            states = torch.stack(out.hidden_states, dim=1).float().cpu()  # [B, layers, T, H]
            for row, i in enumerate(indices):
                hidden[i] = states[row, :, : lengths[i]].clone()
            if logits is None:
                logits = torch.empty(len(lengths), *out.logits.shape[1:])
            logits[torch.as_tensor(indices)] = out.logits.float().cpu()
        return cls(logits, hidden)

    def outputs(self, batch: dict) -> TeacherOutputs:
        """The cached outputs of a batch's examples, padded to the batch's length."""
        index = batch[INDEX].cpu()
        rows = [self.hidden[i] for i in index.tolist()]
        layers, _, size = rows[0].shape
        padded = rows[0].new_zeros(len(rows), layers, batch["input_ids"].shape[1], size)
        for row, states in enumerate(rows):
            padded[row, :, : states.shape[1]] = states
        device = batch["input_ids"].device
        return TeacherOutputs(self.logits[index].to(device), list(padded.to(device).unbind(1)))
