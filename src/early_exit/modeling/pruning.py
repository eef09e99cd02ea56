"""Structured width pruning of a BERT-family encoder, as COST-EFF slenderizes it.

COST-EFF (Shen et al., EMNLP 2022; sbwww/COST-EFF `Costeff/pruning.py`,
`run_glue_costeff.py`) keeps every layer and its exit and makes each layer narrower:
attention heads and feed-forward (FFN) neurons are ranked by a first-order Taylor
importance and the least important are removed physically; the word embeddings can
be factorised to a lower rank by SVD.

Importance, as the released code computes it (`TaylorGrad`, `Taylor_pruning_structured`):
per weight, |sum over batches of |dL/dW|| * |W| (gradients accumulated as absolute
values batch by batch); a head scores the sum over its columns of the attention
output projection; an FFN neuron the sum over its row of the intermediate projection
plus its column of the output projection. The loss L is the caller's; COST-EFF's sums
the loss of **every exit** (`--internal_loss`), so a head that only an internal exit
needs is kept. Dropout is off during the importance pass (the released code zeroes
it), the model otherwise in training mode (gradient equilibrium applies).

The pruned shapes are recorded in the encoder config (`pruned_shapes`: heads and FFN
size per layer, embedding rank), so a saved model rebuilds its shapes from its own
config.json (`apply_pruned_shapes`) and loads without the original.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn
from transformers.pytorch_utils import prune_linear_layer

from early_exit.support.errors import ConfigError, DataError

SHAPES_KEY = "pruned_shapes"  # encoder config attribute describing the pruned widths


class FactorizedEmbedding(nn.Module):
    """Word embeddings as a rank-r product: lookup [V, r] then a linear map r -> hidden."""

    def __init__(self, vocab_size: int, rank: int, hidden: int, padding_idx: int | None = None):
        super().__init__()
        self.low = nn.Embedding(vocab_size, rank, padding_idx=padding_idx)
        self.up = nn.Linear(rank, hidden, bias=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.up(self.low(input_ids))

    @property
    def full_weight(self) -> torch.Tensor:
        """The [V, hidden] matrix this factorisation stands for."""
        return self.low.weight @ self.up.weight.T


def bert_layers(encoder) -> nn.ModuleList:
    """The encoder's layers, checked to have BERT's attention and FFN modules."""
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    ok = isinstance(layers, nn.ModuleList) and all(
        hasattr(layer, "attention") and hasattr(layer, "intermediate") for layer in layers
    )
    if not ok:
        raise ConfigError(
            f"slenderize: {type(encoder).__name__} is not a BERT-style encoder with a list of "
            "layers (ALBERT shares one layer across depth and cannot be pruned per layer)"
        )
    return layers


def head_size(encoder) -> int:
    config = encoder.config
    return config.hidden_size // config.num_attention_heads


def layer_shapes(encoder) -> dict:
    """Heads and FFN size of every layer, and the embedding rank (None: not factorised)."""
    size = head_size(encoder)
    word = encoder.embeddings.word_embeddings
    return {
        "heads": [
            layer.attention.self.query.out_features // size for layer in bert_layers(encoder)
        ],
        "intermediate": [layer.intermediate.dense.out_features for layer in bert_layers(encoder)],
        "embedding_rank": word.up.in_features if isinstance(word, FactorizedEmbedding) else None,
    }


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---- physical removal ---------------------------------------------------------------


def _index(keep: Iterable[int], device) -> torch.Tensor:
    return torch.as_tensor(sorted(keep), dtype=torch.long, device=device)


def prune_layer_heads(layer: nn.Module, keep: Iterable[int], size: int) -> None:
    """Keep only the heads `keep` (indices into the layer's current heads)."""
    attention = layer.attention.self
    heads = _index(keep, attention.query.weight.device)
    if len(heads) == 0:
        raise ConfigError("slenderize.heads: a layer needs at least one attention head")
    rows = (heads[:, None] * size + torch.arange(size, device=heads.device)).reshape(-1)
    for name in ("query", "key", "value"):
        setattr(attention, name, prune_linear_layer(getattr(attention, name), rows, dim=0))
    output = layer.attention.output
    output.dense = prune_linear_layer(output.dense, rows, dim=1)
    attention.num_attention_heads = len(heads)
    attention.all_head_size = len(rows)


def prune_layer_neurons(layer: nn.Module, keep: Iterable[int]) -> None:
    """Keep only the FFN neurons `keep`: rows of the intermediate, columns of the output dense."""
    neurons = _index(keep, layer.intermediate.dense.weight.device)
    if len(neurons) == 0:
        raise ConfigError("slenderize.intermediate: a layer needs at least one FFN neuron")
    layer.intermediate.dense = prune_linear_layer(layer.intermediate.dense, neurons, dim=0)
    layer.output.dense = prune_linear_layer(layer.output.dense, neurons, dim=1)


@torch.no_grad()
def factorise_embedding(encoder, rank: int) -> None:
    """Replace the word embeddings by their best rank-r approximation (truncated SVD)."""
    word = encoder.embeddings.word_embeddings
    full = word.full_weight if isinstance(word, FactorizedEmbedding) else word.weight
    vocab, hidden = full.shape
    if not 1 <= rank <= hidden:
        raise ConfigError(f"slenderize.embedding_rank: {rank} is not in 1..{hidden}")
    u, s, vh = torch.linalg.svd(full.double(), full_matrices=False)
    padding = word.low.padding_idx if isinstance(word, FactorizedEmbedding) else word.padding_idx
    new = FactorizedEmbedding(vocab, rank, hidden, padding).to(full.device, full.dtype)
    new.low.weight.copy_((u[:, :rank] * s[:rank]).to(full.dtype))
    new.up.weight.copy_(vh[:rank].T.to(full.dtype))
    encoder.embeddings.word_embeddings = new


def record_shapes(encoder) -> dict:
    """Write the current widths into the encoder config (saved with config.json)."""
    shapes = layer_shapes(encoder)
    setattr(encoder.config, SHAPES_KEY, shapes)
    return shapes


# ---- importance ---------------------------------------------------------------------


@dataclass
class Importance:
    heads: list[torch.Tensor]  # per layer, one score per current head
    neurons: list[torch.Tensor]  # per layer, one score per current FFN neuron


@contextlib.contextmanager
def dropout_off(model: nn.Module):
    """Training mode without dropout (the released importance pass zeroes dropout)."""
    modules = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    saved = [m.p for m in modules]
    was_training = model.training
    model.train()
    for m in modules:
        m.p = 0.0
    try:
        yield model
    finally:
        for m, p in zip(modules, saved, strict=True):
            m.p = p
        model.train(was_training)


def _scored_weights(encoder) -> list[tuple[nn.Parameter, nn.Parameter, nn.Parameter]]:
    return [
        (
            layer.attention.output.dense.weight,
            layer.intermediate.dense.weight,
            layer.output.dense.weight,
        )
        for layer in bert_layers(encoder)
    ]


def taylor_importance(
    model: nn.Module,
    encoder,
    batches: Iterable[dict],
    loss_fn: Callable[[nn.Module, dict], torch.Tensor],
) -> Importance:
    """First-order Taylor importance of every head and FFN neuron of `encoder` (in `model`).

    `loss_fn(model, batch)` is the objective whose change the importance estimates.
    """
    weights = _scored_weights(encoder)
    accumulated = [[torch.zeros_like(w) for w in triple] for triple in weights]
    with dropout_off(model):
        for batch in batches:
            model.zero_grad(set_to_none=True)
            loss_fn(model, batch).backward()
            for acc, triple in zip(accumulated, weights, strict=True):
                for a, w in zip(acc, triple, strict=True):
                    if w.grad is not None:
                        a.add_(w.grad.abs())
    model.zero_grad(set_to_none=True)
    size = head_size(encoder)
    heads, neurons = [], []
    with torch.no_grad():
        for acc, (attn_out, inter, out) in zip(accumulated, weights, strict=True):
            attn = (acc[0] * attn_out).abs().sum(0)  # per input column of the output projection
            heads.append(attn.view(-1, size).sum(1))
            neurons.append((acc[1] * inter).abs().sum(1) + (acc[2] * out).abs().sum(0))
    return Importance(heads, neurons)


def top_indices(scores: torch.Tensor, k: int) -> list[int]:
    """The k highest-scoring indices, in their original order (ties: lower index first)."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    return sorted(order[:k])


def prune_to(
    encoder,
    importance: Importance,
    heads: int,
    intermediate: int,
    embedding_rank: int | None = None,
) -> dict:
    """Keep the `heads` most important heads and `intermediate` neurons of every layer."""
    size = head_size(encoder)
    for layer, head_scores, neuron_scores in zip(
        bert_layers(encoder), importance.heads, importance.neurons, strict=True
    ):
        if heads < len(head_scores):
            prune_layer_heads(layer, top_indices(head_scores, heads), size)
        if intermediate < len(neuron_scores):
            prune_layer_neurons(layer, top_indices(neuron_scores, intermediate))
    if embedding_rank is not None:
        factorise_embedding(encoder, embedding_rank)
    return record_shapes(encoder)


# ---- targets and rebuilding ------------------------------------------------------------


def apply_pruned_shapes(encoder) -> None:
    """Give a freshly built encoder the widths recorded in its config (weights to be loaded)."""
    shapes = getattr(encoder.config, SHAPES_KEY, None)
    if not shapes:
        return
    layers = bert_layers(encoder)
    total, inter = encoder.config.num_attention_heads, encoder.config.intermediate_size
    heads, ffn = shapes.get("heads", []), shapes.get("intermediate", [])
    if len(heads) != len(layers) or len(ffn) != len(layers):
        raise DataError(
            f"config.json {SHAPES_KEY}: {len(heads)} head counts and {len(ffn)} FFN sizes "
            f"for a model of {len(layers)} layers"
        )
    for i, (layer, h, n) in enumerate(zip(layers, heads, ffn, strict=True)):
        if not (1 <= h <= total and 1 <= n <= inter):
            raise DataError(
                f"config.json {SHAPES_KEY}: layer {i + 1} has {h} heads / FFN {n}, outside "
                f"1..{total} / 1..{inter}"
            )
        prune_layer_heads(layer, range(h), head_size(encoder))
        prune_layer_neurons(layer, range(n))
    rank = shapes.get("embedding_rank")
    if rank:
        word = encoder.embeddings.word_embeddings
        encoder.embeddings.word_embeddings = FactorizedEmbedding(
            word.num_embeddings, int(rank), word.embedding_dim, word.padding_idx
        )
