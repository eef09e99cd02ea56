"""Loading a BERT-family encoder and walking it one layer at a time.

Early exiting needs the hidden state after every layer, so we run the encoder's
pieces (embeddings, then each layer) ourselves instead of calling `model(...)`.
`LayerStack` hides the differences between families: BERT/RoBERTa/ElasticBERT
keep a list of layers, ALBERT shares one layer group across depth.

transformers 5 notes: `BertLayer.forward` returns a Tensor (4.x returned a tuple,
so `layer(...)[0]` would silently take batch item 0) and the extended attention
mask comes from `masking_utils.create_bidirectional_mask`.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer, PreTrainedModel
from transformers.masking_utils import create_bidirectional_mask

from early_exit.modeling.backbone_source import resolve_backbone
from early_exit.support.errors import ConfigError


def load_pretrained(
    name: str, revision: str | None = None, trust_remote_code: bool = False
) -> tuple[PreTrainedModel, object]:
    """Load encoder weights and tokenizer from a hub id, local directory or packaged model."""
    source = resolve_backbone(name)
    kwargs = {"revision": revision, "trust_remote_code": trust_remote_code}
    encoder = AutoModel.from_pretrained(source, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    return encoder, tokenizer


FORMATS = ("hf", "elasticbert")


def load_backbone(spec: dict) -> tuple[PreTrainedModel, object, dict[int, nn.Linear]]:
    """Encoder, tokenizer and per-layer pre-trained poolers for a config `backbone` entry.

    `format: hf` (default) is anything `AutoModel` loads; `format: elasticbert` is a
    checkpoint in the fnlp/elasticbert-base layout (one pooler per layer).
    """
    fmt = spec.get("format", "hf")
    if fmt == "elasticbert":
        from early_exit.modeling.elasticbert_io import load_elastic_backbone

        return load_elastic_backbone(spec["name"], spec.get("revision"))
    if fmt != "hf":
        raise ConfigError(f"backbone.format: unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    encoder, tokenizer = load_pretrained(
        spec["name"], spec.get("revision"), spec.get("trust_remote_code", False)
    )
    return encoder, tokenizer, {}


class LayerStack:
    """Uniform per-layer access to a BERT-family encoder (a view, not a module)."""

    def __init__(self, encoder: PreTrainedModel):
        self.encoder = encoder
        self.config = encoder.config
        inner = encoder.encoder
        self._albert = hasattr(inner, "albert_layer_groups")
        if not self._albert and not isinstance(getattr(inner, "layer", None), nn.ModuleList):
            raise ConfigError(
                f"backbone: {type(encoder).__name__} is not a supported BERT-family encoder "
                "(expected encoder.layer or ALBERT layer groups)"
            )
        self.num_layers = int(self.config.num_hidden_layers)
        self.hidden_size = int(self.config.hidden_size)
        self._fused: list | None = None  # inference forms of the layers (`fuse`)
        self._fused_function = None  # what a fused layer computes with: compiled or not

    def embed(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Embeddings plus the attention mask in the form the layers expect."""
        hidden = self.embeddings(input_ids, token_type_ids)
        return hidden, self.layer_mask(hidden, attention_mask)

    def embeddings(
        self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The embeddings' output as the first layer reads it (no mask)."""
        hidden = self.encoder.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        if self._albert:
            hidden = self.encoder.encoder.embedding_hidden_mapping_in(hidden)
        return hidden

    def layer_mask(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor | None:
        """The attention mask [batch, seq] in the form the layers expect (None: no padding,
        with attention kernels that need none)."""
        return create_bidirectional_mask(
            config=self.config, inputs_embeds=hidden, attention_mask=attention_mask
        )

    def layer(self, index: int, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Apply layer `index` (0-based): its fused form when the stack is fused (`fuse`),
        gradients are off, the encoder is in eval mode and its attention is sdpa (the FLOP
        count switches to eager to see attention's products); else the encoder's module."""
        if (
            self._fused is not None
            and not torch.is_grad_enabled()
            and not self.encoder.training
            and self.config._attn_implementation == "sdpa"
        ):
            return self._fused[index](hidden, mask, self._fused_function)
        if self._albert:
            groups = self.encoder.encoder.albert_layer_groups
            group = int(index / (self.num_layers / self.config.num_hidden_groups))
            return groups[group](hidden, mask)
        return self.encoder.encoder.layer[index](hidden, mask)

    def fuse(self, compile_mode: str | None = None) -> str | None:
        """Use the layers' fused inference form (`early_exit.modeling.fused`) from now on,
        where every layer has one; `compile_mode` also compiles it with `torch.compile`
        (dynamic shapes; e.g. "default", or "reduce-overhead" for CUDA graphs on CUDA).
        Returns None when fused, else why not (the stack keeps its modules)."""
        from early_exit.modeling.fused import FusedLayer, fusable, fused_layer

        why = fusable(self.encoder)
        if why is not None:
            self.unfuse()
            return why
        self._fused = [FusedLayer(layer) for layer in self.encoder.encoder.layer]
        self._fused_function = fused_layer
        if compile_mode is not None:
            self._fused_function = torch.compile(fused_layer, dynamic=True, mode=compile_mode)
        return None

    def unfuse(self) -> None:
        """Back to the encoder's own layer modules."""
        self._fused = self._fused_function = None

    @property
    def fused(self) -> bool:
        return self._fused is not None

    def pretrained_pooler(self) -> nn.Linear | None:
        """The dense layer of the pre-trained pooler (BERT: [CLS] dense+tanh), if any."""
        pooler = getattr(self.encoder, "pooler", None)
        if isinstance(pooler, nn.Linear):  # ALBERT: pooler is a Linear, tanh applied outside
            return pooler
        return getattr(pooler, "dense", None)
