"""A multi-exit classifier around any BERT-family encoder.

Exit heads sit after a configurable set of layers (1-based layer numbers, as in
the papers). One forward pass returns every exit's logits, shape
[batch, n_exits, n_labels] (n_labels = 1 for regression); exit *policies* decide
afterwards which exit answers. The forward pass stops at the last exit's layer.

Head shapes (the recipes choose one):
- "pooler": a pooler (dense+tanh) per exit, initialised from the pre-trained
  pooler of that layer (ElasticBERT) or of the model (DeeBERT highways).
- "shared_pooler": one pooler for every exit (PABEE).
- "layer_mix": Sledgehammer: one shared pooler applied to every layer; exit i
  classifies a learned, L2-normalised weighted sum of layers 1..i.
- "linear": dropout -> linear on the pooled vector.
- "tanh": tanh -> dropout -> linear on the pooled vector (COST-EFF's exits: its pooler
  has no dense layer by default).
Pooling is "cls" (token 0, as in the papers) or "mean" over non-padding tokens
(needed for sentence-embedding models such as MiniLM, whose [CLS] vector is nearly
constant in the lower layers).

A learned exit gate (BERxiT's learning-to-exit module, `exit_gate: "lte"`) is one
Linear(hidden, 1) + sigmoid shared by all exits, reading each exit's pooled vector
(the one its classifier sees); its outputs come back as `exit_scores` [batch, n_exits].

Gradient equilibrium (ElasticBERT, after Li et al. 2019) rescales gradients in the
backward pass only: the hidden state entering an exit is scaled by 1/n and the path
onward by (n - 1), n being the number of exits from this one to the last.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel

from early_exit.modeling.backbone import LayerStack
from early_exit.modeling.exit_layers import resolve_exit_layers
from early_exit.support.errors import ConfigError

Pooling = Literal["cls", "mean"]
HeadKind = Literal["pooler", "shared_pooler", "layer_mix", "linear", "tanh"]
HEADS = get_args(HeadKind)  # the schema's `head` enum is checked against it (tests/architecture)
EXIT_GATES = ("lte",)


@dataclass
class ExitConfig:
    """Everything about the exits that changes the forward pass (saved with checkpoints)."""

    num_labels: int
    exit_layers: list[int]
    pooling: Pooling = "cls"
    head: HeadKind = "pooler"
    dropout: float | None = None  # None: the backbone's hidden_dropout_prob
    gradient_equilibrium: bool = False
    exit_gate: str | None = None  # "lte": BERxiT's learned exit gate; None: no gate
    extra: dict = field(default_factory=dict)  # recipe-specific settings, kept for the record

    def to_dict(self) -> dict:
        return asdict(self)


class Pooler(nn.Module):
    """BERT-style pooler: dense + tanh on an already pooled vector."""

    def __init__(self, hidden_size: int, init_from: nn.Linear | None = None):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        if init_from is not None:
            self.dense.load_state_dict(init_from.state_dict())

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(pooled))


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None, how: Pooling) -> torch.Tensor:
    """Reduce [batch, seq, hidden] to [batch, hidden]. `attention_mask` None: no padding
    (the engine knows it without asking the device), one mean instead of the weighted
    sum's seven operations, with the same bits."""
    if how == "cls":
        return hidden[:, 0]
    if attention_mask is None:
        return hidden.mean(1)
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class _GradientRescale(torch.autograd.Function):
    """Identity in the forward pass; multiplies the gradient by `scale` in the backward pass."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.scale, None


def rescale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    return _GradientRescale.apply(x, scale)


def equilibrium_scales(exit_layers: list[int]) -> dict[int, tuple[float, float]]:
    """Layer -> (scale into the exit, scale onward) for gradient equilibrium.

    With exits at every layer of an L-layer model this is ElasticBERT's
    1/(L-i) and (L-i-1) for 0-based layer i; with a subset of exits, n counts the
    exits still ahead (including this one).
    """
    n_exits = len(exit_layers)
    return {
        layer: (1.0 / (n_exits - k), float(n_exits - k - 1)) for k, layer in enumerate(exit_layers)
    }


@dataclass
class MultiExitOutput:
    logits: torch.Tensor  # [batch, n_exits_run, n_labels]
    exit_layers: list[int]  # the layer number of each returned exit
    exit_scores: torch.Tensor | None = None  # [batch, n_exits_run], gate outputs (with a gate)
    # with output_hidden_states: the embeddings' output, then every layer's [batch, seq, hidden]
    hidden_states: list[torch.Tensor] | None = None


class MultiExitModel(nn.Module):
    """Encoder + exit heads; `forward` returns the logits of every exit."""

    def __init__(
        self,
        encoder: PreTrainedModel,
        cfg: ExitConfig,
        pooler_init: dict[int, nn.Linear] | None = None,
    ):
        """`pooler_init` maps a layer number to the pre-trained pooler of that layer
        (ElasticBERT checkpoints have one per layer); other exits start from the
        encoder's own pooler, when it has one."""
        super().__init__()
        if cfg.head not in HEADS:
            raise ConfigError(f"head: unknown head {cfg.head!r}; allowed: {', '.join(HEADS)}")
        if cfg.pooling not in ("cls", "mean"):
            raise ConfigError(f"pooling: unknown pooling {cfg.pooling!r}; allowed: cls, mean")
        if cfg.exit_gate not in (None, *EXIT_GATES):
            raise ConfigError(f"exit_gate: unknown gate {cfg.exit_gate!r}; allowed: lte")
        self.encoder = encoder
        self.stack = LayerStack(encoder)
        self.cfg = cfg
        self.exit_layers = resolve_exit_layers(cfg.exit_layers, self.stack.num_layers)
        cfg.exit_layers = list(self.exit_layers)
        self.poolers = self._build_poolers(pooler_init or {})
        # The encoder's own pooler is replaced by the exit poolers (copied above).
        if getattr(encoder, "pooler", None) is not None:
            encoder.pooler = None
        dropout = cfg.dropout if cfg.dropout is not None else encoder.config.hidden_dropout_prob
        self.dropout = nn.Dropout(dropout)
        hidden = self.stack.hidden_size
        self.classifiers = nn.ModuleList(
            nn.Linear(hidden, cfg.num_labels) for _ in self.exit_layers
        )
        if cfg.head == "layer_mix":  # Sledgehammer: randn init, as in the original
            self.mix = nn.ParameterList(
                nn.Parameter(torch.randn(layer)) for layer in self.exit_layers
            )
        if cfg.exit_gate == "lte":  # one gate shared by every exit (BERxiT)
            self.gate = nn.Linear(hidden, 1)
        self._exit_index = {layer: i for i, layer in enumerate(self.exit_layers)}
        self._scales = equilibrium_scales(self.exit_layers)

    def _build_poolers(self, pooler_init: dict[int, nn.Linear]) -> nn.ModuleList:
        pretrained = self.stack.pretrained_pooler()
        if self.cfg.head == "pooler":
            sources = [pooler_init.get(layer, pretrained) for layer in self.exit_layers]
        elif self.cfg.head in ("shared_pooler", "layer_mix"):
            sources = [pretrained]
        else:
            sources = []
        return nn.ModuleList(
            Pooler(self.stack.hidden_size, copy.deepcopy(src) if src is not None else None)
            for src in sources
        )

    @property
    def num_layers(self) -> int:
        return self.stack.num_layers

    def exit_index(self, layer: int) -> int | None:
        """Position of the exit after `layer` (1-based) among the exits; None if it has none."""
        return self._exit_index.get(layer)

    def mix_state(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """Sledgehammer's per-layer state: the shared pooler on this layer's pooled vector.
        A layer_mix exit mixes these states of every layer up to its own."""
        return self.dropout(self.poolers[0](pool(hidden, attention_mask, self.cfg.pooling)))

    def head(
        self,
        exit_index: int,
        hidden: torch.Tensor,
        attention_mask: torch.Tensor | None,
        mixed: list[torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits of one exit from its layer's hidden states (or the layer mix), and the
        vector its classifier read (what the exit gate reads too, `gate_score`).

        `mixed` holds `mix_state` of every layer so far (layer_mix heads only)."""
        if self.cfg.head == "layer_mix":
            weights = self.mix[exit_index]
            stacked = torch.stack(mixed[: len(weights)], dim=-1)  # [batch, hidden, layers]
            # a matrix product [B*H, k] @ [k, 1] (not a matrix-vector one), which torch's
            # FLOP counter sees: 2*H*k FLOPs per exit (`early_exit.modeling.flops`)
            features = (stacked @ (weights / weights.norm())[:, None]).squeeze(-1)
            return self.classifiers[exit_index](features), features
        return self.head_on_pooled(exit_index, self.pooled(hidden, attention_mask))

    def pooled(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """The parameter-free start of a (not layer_mix) head: the pooled vector of a layer."""
        pooled = pool(hidden, attention_mask, self.cfg.pooling)
        return torch.tanh(pooled) if self.cfg.head == "tanh" else pooled

    def head_on_pooled(
        self, exit_index: int, pooled: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The trainable rest of a (not layer_mix) head: logits and classifier input.

        The pooler is applied as its functions (what `Pooler.forward` computes) and dropout
        only in training: at batch size 1 the three module calls were about 40% of a
        head's time, and the engine evaluates a head at every exit. The classifier stays
        a module call (the FLOP count hooks it)."""
        if self.poolers:
            dense = self.poolers[min(exit_index, len(self.poolers) - 1)].dense
            pooled = torch.tanh(F.linear(pooled, dense.weight, dense.bias))
        features = self.dropout(pooled) if self.training else pooled
        return self.classifiers[exit_index](features), features

    def exit_inputs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """What each exit's head reads before its own parameters, [batch, n_exits, hidden]:
        all that a stage training heads on a frozen encoder needs from the encoder
        (`early_exit.training.frozen_encoder`)."""
        if self.cfg.head == "layer_mix":
            raise ConfigError("layer_mix heads read every layer: no per-exit input to cache")
        hidden, mask = self.stack.embed(input_ids, attention_mask, token_type_ids)
        pooled = []
        for index in range(self.exit_layers[-1]):
            hidden = self.stack.layer(index, hidden, mask)
            if index + 1 in self._exit_index:
                pooled.append(self.pooled(hidden, attention_mask))
        return torch.stack(pooled, dim=1)

    def from_exit_inputs(self, inputs: torch.Tensor) -> MultiExitOutput:
        """Every exit's output from `exit_inputs`: the same as `forward` on the same text."""
        logits, scores = [], []
        for exit_index in range(inputs.shape[1]):
            exit_logits, features = self.head_on_pooled(exit_index, inputs[:, exit_index])
            logits.append(exit_logits)
            score = self.gate_score(features)
            if score is not None:
                scores.append(score)
        return MultiExitOutput(
            logits=torch.stack(logits, dim=1),
            exit_layers=list(self.exit_layers),
            exit_scores=torch.stack(scores, dim=1) if scores else None,
        )

    def gate_score(self, features: torch.Tensor) -> torch.Tensor | None:
        """The exit gate's output u_i for one exit's classifier input (BERxiT's LTE:
        sigmoid(w . h_i + b)), or None for a model without a gate. Not detached: as in
        BERxiT, the LTE loss also trains what the exit reads."""
        if self.cfg.exit_gate != "lte":
            return None
        return torch.sigmoid(self.gate(features))[:, 0]

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        up_to_layer: int | None = None,
        output_hidden_states: bool = False,
    ) -> MultiExitOutput:
        """Run the encoder up to the last exit (or `up_to_layer`), collecting each exit.

        `output_hidden_states` also returns the hidden states (distillation needs them);
        at an exit the one returned is the one the exit reads (gradient equilibrium's
        1/n applies to both, as in COST-EFF's released code)."""
        last = self.exit_layers[-1] if up_to_layer is None else up_to_layer
        if last < self.exit_layers[0]:
            raise ValueError(f"up_to_layer={last} is below the first exit {self.exit_layers[0]}")
        equilibrium = self.cfg.gradient_equilibrium and self.training
        hidden, mask = self.stack.embed(input_ids, attention_mask, token_type_ids)
        logits, layers, mixed, scores = [], [], [], []
        states = [hidden] if output_hidden_states else None
        for index in range(last):
            hidden = self.stack.layer(index, hidden, mask)
            layer = index + 1
            if self.cfg.head == "layer_mix":
                mixed.append(self.mix_state(hidden, attention_mask))
            if layer not in self._exit_index:
                if states is not None:
                    states.append(hidden)
                continue
            into_exit, onward = self._scales[layer]
            if equilibrium:
                hidden = rescale_gradient(hidden, into_exit)
            if states is not None:
                states.append(hidden)
            exit_logits, features = self.head(
                self._exit_index[layer], hidden, attention_mask, mixed
            )
            logits.append(exit_logits)
            score = self.gate_score(features)
            if score is not None:
                scores.append(score)
            layers.append(layer)
            if equilibrium:
                hidden = rescale_gradient(hidden, onward)
        return MultiExitOutput(
            logits=torch.stack(logits, dim=1),
            exit_layers=layers,
            exit_scores=torch.stack(scores, dim=1) if scores else None,
            hidden_states=states,
        )
