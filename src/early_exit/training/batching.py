"""Tokenised examples, length-bucketed batches and dynamic padding.

Transformer cost on CPU is linear in the padded sequence length, so batches are
built from examples of similar length (bucketing) and padded only to their own
longest example (dynamic padding). Batch order is a pure function of
(seed, epoch), which makes training deterministic and resumable mid-epoch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import DataCollatorWithPadding

INDEX = "index"  # batch key of each row's example index (for outputs cached per example)


def model_inputs(batch: dict) -> dict:
    """What a model reads from a batch: not the labels, not the example indices."""
    return {k: v for k, v in batch.items() if k not in ("labels", INDEX)}


@dataclass
class Encoded:
    """A tokenised split: per-example features, labels and unpadded lengths."""

    features: list[dict]  # input_ids, attention_mask[, token_type_ids]
    labels: np.ndarray
    lengths: np.ndarray
    ids: list[str]

    def __len__(self) -> int:
        return len(self.features)


def encode(examples: list[dict], tokenizer, max_length: int) -> Encoded:
    """Tokenise prepared examples (`text`, optional `text_pair`, `label`, `id`)."""
    texts = [ex["text"] for ex in examples]
    pairs = (
        [ex["text_pair"] for ex in examples] if examples and "text_pair" in examples[0] else None
    )
    tokens = tokenizer(texts, pairs, truncation=True, max_length=max_length)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in tokens]
    features = [{k: tokens[k][i] for k in keys} for i in range(len(examples))]
    lengths = np.array([len(f["input_ids"]) for f in features], dtype=np.int64)
    labels = np.array([ex["label"] for ex in examples])
    return Encoded(features, labels, lengths, [str(ex["id"]) for ex in examples])


def bucketed_batches(
    lengths: np.ndarray, batch_size: int, seed: int, epoch: int, bucket_batches: int
) -> list[np.ndarray]:
    """Shuffled batches of similar-length examples, identical for the same (seed, epoch).

    Shuffle all indices, cut them into chunks of `bucket_batches` batches, sort each
    chunk by length, cut it into batches, then shuffle the batch order. Batches stay
    random across the epoch while padding inside a batch stays small.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    chunk = batch_size * max(1, bucket_batches)
    batches = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def sorted_batches(
    lengths: np.ndarray, batch_size: int, by_length: bool = True
) -> list[np.ndarray]:
    """Inference batches in length order (outputs are put back in example order by index),
    or in arrival order with `by_length=False`."""
    order = np.argsort(lengths, kind="stable") if by_length else np.arange(len(lengths))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def inference_batches(collate, lengths: np.ndarray, batch_size: int, device) -> Iterator:
    """(example indices, model inputs on `device`) for every batch of `sorted_batches`."""
    for indices in sorted_batches(lengths, batch_size):
        yield indices, {k: v.to(device) for k, v in model_inputs(collate(indices)).items()}


class Collator:
    """Pads a list of example indices into model inputs plus labels."""

    def __init__(self, tokenizer, data: Encoded, label_dtype: torch.dtype = torch.long):
        self.pad = DataCollatorWithPadding(tokenizer, return_tensors="pt")
        self.data = data
        self.label_dtype = label_dtype

    def __call__(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        batch = self.pad([self.data.features[i] for i in indices])
        batch["labels"] = torch.as_tensor(self.data.labels[indices], dtype=self.label_dtype)
        return dict(batch)


def indexed(collate: Collator, indices: np.ndarray) -> dict:
    """A batch that also carries its example indices (for outputs cached per example)."""
    return collate(indices) | {INDEX: torch.as_tensor(indices)}


@dataclass
class BatchStream:
    """An endless, deterministic stream of indexed training batches: epoch after epoch of
    `bucketed_batches`, for training counted in steps (`loop.train_steps`)."""

    collate: Collator
    lengths: np.ndarray
    batch_size: int
    seed: int
    bucket_batches: int  # TrainingSettings.bucket_batches
    epoch: int = -1
    drawn: int = 0  # batches handed out so far
    queue: list = field(default_factory=list)

    @property
    def per_epoch(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def next(self) -> dict:
        if not self.queue:
            self.epoch += 1
            self.queue = list(
                bucketed_batches(
                    self.lengths, self.batch_size, self.seed, self.epoch, self.bucket_batches
                )
            )
        self.drawn += 1
        return indexed(self.collate, self.queue.pop(0))
