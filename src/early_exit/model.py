"""A multi-exit classifier around any BERT-family encoder.

Exit heads sit after a configurable set of layers (1-based layer numbers, as in
the papers). One forward pass returns every exit's logits, shape
[batch, n_exits, n_labels]; exit *policies* decide afterwards which exit answers.

Head shapes (the recipes choose one):
- "pooler": a pooler (dense+tanh) per exit, initialised from the pre-trained
  pooler when the backbone has one (DeeBERT highways, ElasticBERT).
- "shared_pooler": one pooler for every exit (PABEE).
- "linear": dropout -> linear on the pooled vector.
Pooling is "cls" (token 0, as in the papers) or "mean" over non-padding tokens
(needed for sentence-embedding models such as MiniLM, whose [CLS] vector is nearly
constant in the lower layers).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Literal

import torch
from torch import nn
from transformers import PreTrainedModel

from early_exit.backbone import LayerStack
from early_exit.errors import ConfigError

Pooling = Literal["cls", "mean"]
HeadKind = Literal["pooler", "shared_pooler", "linear"]


@dataclass
class ExitConfig:
    """Everything about the exits that changes the forward pass (saved with checkpoints)."""

    num_labels: int
    exit_layers: list[int]
    pooling: Pooling = "cls"
    head: HeadKind = "pooler"
    dropout: float | None = None  # None: the backbone's hidden_dropout_prob
    extra: dict = field(default_factory=dict)  # recipe-specific settings, kept for the record

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_exit_layers(spec: str | list[int], num_layers: int) -> list[int]:
    """`"all"` or a list of 1-based layer numbers -> sorted, validated list."""
    if spec == "all":
        return list(range(1, num_layers + 1))
    if not isinstance(spec, list) or not spec:
        raise ConfigError(f"exit_layers: expected 'all' or a non-empty list, got {spec!r}")
    bad = [x for x in spec if not isinstance(x, int) or not 1 <= x <= num_layers]
    if bad:
        raise ConfigError(
            f"exit_layers: {bad} outside the backbone's layers; allowed 1..{num_layers}"
        )
    if len(set(spec)) != len(spec):
        raise ConfigError(f"exit_layers: duplicate layers in {spec}")
    return sorted(spec)


class Pooler(nn.Module):
    """BERT-style pooler: dense + tanh on an already pooled vector."""

    def __init__(self, hidden_size: int, init_from: nn.Linear | None = None):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        if init_from is not None:
            self.dense.load_state_dict(init_from.state_dict())

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(pooled))


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, how: Pooling) -> torch.Tensor:
    """Reduce [batch, seq, hidden] to [batch, hidden]."""
    if how == "cls":
        return hidden[:, 0]
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


@dataclass
class MultiExitOutput:
    logits: torch.Tensor  # [batch, n_exits_run, n_labels]
    exit_layers: list[int]  # the layer number of each returned exit


class MultiExitModel(nn.Module):
    """Encoder + exit heads; `forward` returns the logits of every exit."""

    def __init__(self, encoder: PreTrainedModel, cfg: ExitConfig):
        super().__init__()
        self.encoder = encoder
        self.stack = LayerStack(encoder)
        self.cfg = cfg
        self.exit_layers = resolve_exit_layers(cfg.exit_layers, self.stack.num_layers)
        cfg.exit_layers = list(self.exit_layers)
        self.poolers = self._build_poolers()
        # The encoder's own pooler is replaced by the exit poolers (copied above).
        if getattr(encoder, "pooler", None) is not None:
            encoder.pooler = None
        dropout = cfg.dropout if cfg.dropout is not None else encoder.config.hidden_dropout_prob
        self.dropout = nn.Dropout(dropout)
        hidden = self.stack.hidden_size
        self.classifiers = nn.ModuleList(
            nn.Linear(hidden, cfg.num_labels) for _ in self.exit_layers
        )

    def _build_poolers(self) -> nn.ModuleList:
        if self.cfg.head not in ("pooler", "shared_pooler", "linear"):
            raise ConfigError(
                f"head: unknown head {self.cfg.head!r}; allowed: pooler, shared_pooler, linear"
            )
        if self.cfg.pooling not in ("cls", "mean"):
            raise ConfigError(f"pooling: unknown pooling {self.cfg.pooling!r}; allowed: cls, mean")
        n = {"pooler": len(self.exit_layers), "shared_pooler": 1, "linear": 0}[self.cfg.head]
        pretrained = self.stack.pretrained_pooler()
        init = copy.deepcopy(pretrained) if pretrained is not None else None
        return nn.ModuleList(Pooler(self.stack.hidden_size, init) for _ in range(n))

    @property
    def num_layers(self) -> int:
        return self.stack.num_layers

    def exit_logits(
        self, exit_index: int, hidden: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """Logits of exit `exit_index` (its position in `exit_layers`) from its hidden states."""
        pooled = pool(hidden, attention_mask, self.cfg.pooling)
        if self.poolers:
            pooled = self.poolers[min(exit_index, len(self.poolers) - 1)](pooled)
        return self.classifiers[exit_index](self.dropout(pooled))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        up_to_layer: int | None = None,
    ) -> MultiExitOutput:
        """Run the encoder up to `up_to_layer` (default: all layers), collecting each exit."""
        last = self.num_layers if up_to_layer is None else up_to_layer
        hidden, mask = self.stack.embed(input_ids, attention_mask, token_type_ids)
        logits, layers = [], []
        exit_at = {layer: i for i, layer in enumerate(self.exit_layers)}
        for index in range(last):
            hidden = self.stack.layer(index, hidden, mask)
            if index + 1 in exit_at:
                logits.append(self.exit_logits(exit_at[index + 1], hidden, attention_mask))
                layers.append(index + 1)
        return MultiExitOutput(logits=torch.stack(logits, dim=1), exit_layers=layers)
