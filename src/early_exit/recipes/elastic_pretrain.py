"""Elastic pre-training: continued masked-LM training with a loss at every layer.

ElasticBERT (Liu et al., NAACL 2022) is pre-trained with MLM (and SOP) heads at
every layer, L = sum_l L_l, with gradient equilibrium and *grouped* exits: the
exits are split into groups optimised in turn, for 12 layers G1 = {1,3,5,7,9,11,12}
and G2 = {2,4,6,8,10,12} (odd layers / even layers, the last layer in both). Its
pre-training code is not released and its weights cannot be fetched here, so this
stage continues the pre-training of any BERT on a task's unlabeled training text in
that way, giving a multi-exit backbone that the `elasticbert` recipe fine-tunes
(run by `early_exit.runners.elastic_pretrain`, rule `elastic_pretrain`).

Choices (not specified by the paper): one MLM head shared by all layers (BERT's
transform + decoder tied to the word embeddings). The head is the checkpoint's
pre-trained one when its safetensors hold one (BERT `cls.predictions.*`, RoBERTa
`lm_head.*`: `mlm_head_weights`), since a random head trained at the pre-training
learning rate would disturb the backbone while it learns; it is newly initialised only
when the checkpoint has none (the packaged MiniLM, a sentence-transformers export of
the encoder alone, has none, so the default workflow starts with a new head) or keeps
its weights only in a pickled `pytorch_model.bin`, which is never unpickled. MLM only
(no SOP: single texts have no sentence order to predict), so the per-layer poolers
are copies of the backbone's pre-trained pooler; the MLM loss is computed on masked
positions only, which keeps the vocabulary projection cheap. The result is written in
the ElasticBERT checkpoint layout.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn
from transformers import DataCollatorForLanguageModeling
from transformers.activations import ACT2FN

from early_exit.modeling.backbone import LayerStack
from early_exit.modeling.backbone_source import resolve_backbone
from early_exit.modeling.model import equilibrium_scales, rescale_gradient
from early_exit.support.errors import DataError
from early_exit.training.batching import Encoded
from early_exit.training.stage import Stage

log = logging.getLogger(__name__)


def exit_groups(num_layers: int) -> list[list[int]]:
    """ElasticBERT's two groups: odd layers and even layers, the last layer in both."""
    odd = sorted({*range(1, num_layers + 1, 2), num_layers})
    even = sorted({*range(2, num_layers + 1, 2), num_layers})
    return [odd, even]


# Where checkpoints keep their MLM head: our name -> (BERT key, RoBERTa key).
HEAD_KEYS = {
    "dense.weight": ("cls.predictions.transform.dense.weight", "lm_head.dense.weight"),
    "dense.bias": ("cls.predictions.transform.dense.bias", "lm_head.dense.bias"),
    "LayerNorm.weight": ("cls.predictions.transform.LayerNorm.weight", "lm_head.layer_norm.weight"),
    "LayerNorm.bias": ("cls.predictions.transform.LayerNorm.bias", "lm_head.layer_norm.bias"),
    "bias": ("cls.predictions.bias", "lm_head.bias"),
}


def _safetensors_files(backbone: dict) -> list[Path]:
    """The backbone's safetensors files: a local or packaged directory, or the hub copy
    `from_pretrained` has already put in the cache (nothing is downloaded here)."""
    source = Path(resolve_backbone(backbone["name"]))
    if source.is_dir():
        return sorted(source.glob("*.safetensors"))
    from transformers.utils import cached_file

    found = cached_file(
        backbone["name"],
        "model.safetensors",
        revision=backbone.get("revision"),
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
    )
    return [Path(found)] if found else []


def mlm_head_weights(backbone: dict) -> dict[str, torch.Tensor] | None:
    """The pre-trained MLM head of a checkpoint (keys as in `MLMHead`), or None if it has none."""
    for path in _safetensors_files(backbone):
        with safe_open(str(path), framework="pt") as f:
            keys = set(f.keys())
            for layout in (0, 1):  # BERT, RoBERTa
                wanted = {ours: theirs[layout] for ours, theirs in HEAD_KEYS.items()}
                if set(wanted.values()) <= keys:
                    return {ours: f.get_tensor(theirs) for ours, theirs in wanted.items()}
    return None


class MLMHead(nn.Module):
    """BERT's MLM head: dense -> activation -> LayerNorm -> decoder tied to the embeddings."""

    def __init__(self, config, word_embeddings: nn.Embedding):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = ACT2FN[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.word_embeddings = word_embeddings
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        nn.init.normal_(self.dense.weight, std=config.initializer_range)
        nn.init.zeros_(self.dense.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return (
            self.LayerNorm(self.act(self.dense(hidden))) @ self.word_embeddings.weight.T + self.bias
        )


class ElasticMLM(nn.Module):
    """An encoder with the shared MLM head applied after every layer (`head_weights`:
    a pre-trained head from `mlm_head_weights`; None: a new one)."""

    def __init__(self, encoder, head_weights: dict[str, torch.Tensor] | None = None):
        super().__init__()
        self.encoder = encoder
        self.stack = LayerStack(encoder)
        self.head = MLMHead(encoder.config, encoder.embeddings.word_embeddings)
        if head_weights is not None:
            # strict: every head tensor must be there (the embeddings are tied, not loaded)
            missing = self.head.load_state_dict(head_weights, strict=False).missing_keys
            if missing != ["word_embeddings.weight"]:
                raise DataError(f"MLM head weights lack {missing}")

    def layer_losses(self, batch: dict, exits: list[int]) -> torch.Tensor:
        """MLM loss of each exit in `exits` on the masked positions, shape [len(exits)]."""
        labels = batch["labels"]
        masked = labels != -100
        hidden, mask = self.stack.embed(
            batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids")
        )
        scales = equilibrium_scales(exits)
        losses = []
        for index in range(exits[-1]):
            hidden = self.stack.layer(index, hidden, mask)
            if index + 1 not in scales:
                continue
            into_exit, onward = scales[index + 1]
            hidden = rescale_gradient(hidden, into_exit)
            logits = self.head(hidden[masked])
            losses.append(F.cross_entropy(logits, labels[masked]))
            hidden = rescale_gradient(hidden, onward)
        return torch.stack(losses)


class MLMCollator:
    """Dynamic padding plus BERT masking (15% of tokens: 80% [MASK], 10% random, 10% kept)."""

    def __init__(self, tokenizer, data: Encoded, mlm_probability: float):
        self.mask = DataCollatorForLanguageModeling(
            tokenizer, mlm_probability=mlm_probability, return_tensors="pt"
        )
        self.data = data

    def __call__(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        features = [{k: v for k, v in self.data.features[i].items()} for i in indices]
        return dict(self.mask(features))


def mlm_stage(cfg: dict, num_layers: int) -> Stage:
    groups = exit_groups(num_layers)

    def step_loss(model: ElasticMLM, batch: dict, step: int) -> torch.Tensor:
        return model.layer_losses(batch, groups[step % len(groups)]).sum()

    return Stage("elastic-mlm", None, cfg["epochs"], cfg["learning_rate"], step_loss=step_loss)
