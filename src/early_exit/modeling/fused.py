"""A BERT layer's inference form: one matrix product for Q, K and V, no module dispatch.

A Hugging Face `BertLayer` call walks nine modules (attention, self-attention, three
projections, the attention interface, two outputs, the intermediate, dropouts) and
about thirty tensor operations, most of them views. At batch size 1 on short inputs
that Python overhead is a large share of a layer (docs/performance.md). `FusedLayer`
computes the same function with the same kernels, eleven of them (and six views): the
query, key and value weights concatenated into one [3 * heads * d, hidden] matrix (one
product instead of three), `scaled_dot_product_attention` with the layer's own scale,
the two residual layer norms and the feed-forward block.

It is an inference form only: no dropout, and the concatenated QKV weight is a copy
taken when the layer is fused, so a `LayerStack` uses it only while gradients are off
and the encoder is in eval mode (`LayerStack.fuse`); training always runs the original
modules. Without padding its outputs equal the original layer's bit for bit on the
CPU (tests/modeling/test_fused.py); with padding it reads the mask the encoder's sdpa
attention builds (`LayerStack.layer_mask`).

Only plain BERT-style self-attention layers fuse (BERT, RoBERTa, ElasticBERT, COST-EFF's
pruned layers, with any number of heads per layer): `fusable` says why another layer
does not (ALBERT's shared groups, cross-attention, a layer without heads, an attention
implementation other than sdpa).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FUSABLE_ATTENTION = ("sdpa",)  # eager is asked for to see attention as matrix products


def fusable(encoder) -> str | None:
    """None when every layer of `encoder` has a fused form; else why not, in words."""
    config = encoder.config
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList):
        return f"{type(encoder).__name__} has no list of layers (ALBERT shares one group)"
    if getattr(config, "_attn_implementation", "eager") not in FUSABLE_ATTENTION:
        return f"attention implementation {config._attn_implementation!r}"
    if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
        return "a decoder or cross-attention layer"
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        return f"position_embedding_type {config.position_embedding_type!r}"
    for index, layer in enumerate(layers):
        why = _layer_fusable(layer)
        if why is not None:
            return f"layer {index}: {why}"
    return None


def _layer_fusable(layer) -> str | None:
    try:
        attention, intermediate, output = layer.attention, layer.intermediate, layer.output
        self_attn = attention.self
        parts = (self_attn.query, self_attn.key, self_attn.value, attention.output.dense)
        parts += (attention.output.LayerNorm, intermediate.dense, output.dense, output.LayerNorm)
    except AttributeError as err:
        return f"not a BERT-style layer ({err})"
    if getattr(layer, "chunk_size_feed_forward", 0):
        return "a chunked feed-forward block"
    if getattr(attention, "is_cross_attention", False) or getattr(self_attn, "is_causal", False):
        return "causal or cross-attention"
    if not all(isinstance(part, nn.Linear | nn.LayerNorm) for part in parts):
        return "projections that are not Linear / LayerNorm modules"
    if self_attn.query.out_features == 0:
        return "no attention heads left"
    if getattr(intermediate, "intermediate_act_fn", None) is None:
        return "no intermediate activation"
    return None


class FusedLayer:
    """One BERT layer as a function of (hidden states, attention mask or None)."""

    def __init__(self, layer: nn.Module):
        self.layer = layer
        attention = layer.attention
        self.head_size = int(attention.self.attention_head_size)
        self.heads = attention.self.query.out_features // self.head_size
        self.scale = getattr(attention.self, "scaling", self.head_size**-0.5)
        self.act = layer.intermediate.intermediate_act_fn
        self.refresh()

    def refresh(self) -> None:
        """Take the concatenated QKV weight again (after the weights moved or changed)."""
        attn = self.layer.attention.self
        with torch.no_grad():
            self.qkv_weight = torch.cat([attn.query.weight, attn.key.weight, attn.value.weight])
            self.qkv_bias = torch.cat([attn.query.bias, attn.key.bias, attn.value.bias])

    def __call__(
        self, hidden: torch.Tensor, mask: torch.Tensor | None, function=None
    ) -> torch.Tensor:
        """The layer on `hidden` [batch, seq, hidden]; `function`: `fused_layer` or a
        compiled form of it."""
        if self.qkv_weight.device != hidden.device:
            self.refresh()
        layer = self.layer
        out, inter, final = layer.attention.output, layer.intermediate, layer.output
        return (function or fused_layer)(
            hidden, mask, self.qkv_weight, self.qkv_bias, self.heads, self.head_size,
            self.scale, out.dense.weight, out.dense.bias, out.LayerNorm.weight,
            out.LayerNorm.bias, out.LayerNorm.eps, inter.dense.weight, inter.dense.bias,
            self.act, final.dense.weight, final.dense.bias, final.LayerNorm.weight,
            final.LayerNorm.bias, final.LayerNorm.eps,
        )  # fmt: skip


def fused_layer(
    x, mask, qkv_w, qkv_b, heads, head_size, scale, o_w, o_b, ln1_w, ln1_b, eps1,
    i_w, i_b, act, f_w, f_b, ln2_w, ln2_b, eps2,
) -> torch.Tensor:  # fmt: skip
    """The layer's arithmetic; a free function so that one `torch.compile` serves every
    layer (weights are inputs, not constants baked into the graph)."""
    batch, seq, hidden = x.shape
    qkv = F.linear(x, qkv_w, qkv_b).view(batch, seq, 3, heads, head_size).permute(2, 0, 3, 1, 4)
    context = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=mask, scale=scale)
    context = context.transpose(1, 2).reshape(batch, seq, heads * head_size)
    x = F.layer_norm(F.linear(context, o_w, o_b) + x, (hidden,), ln1_w, ln1_b, eps1)
    y = F.linear(act(F.linear(x, i_w, i_b)), f_w, f_b)
    return F.layer_norm(y + x, (hidden,), ln2_w, ln2_b, eps2)
