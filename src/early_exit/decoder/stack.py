"""Walk a Llama-shaped decoder layer by layer with a KV cache we own.

Every method here runs part of the stack: a draft through the first E layers, a
verification from layer E on, a token that exits at layer l and fills the skipped layers'
cache some other way. transformers' `model(...)` runs all layers at once, so we call its
modules ourselves (`embed_tokens`, `rotary_emb`, each decoder layer, `norm`, `lm_head`)
and hand the attention our `KVCache`, which has the `update(key, value, layer_idx)` the
attention modules call. The cache is a plain list of tensors per layer, so cropping the
rejected draft tokens is a slice, and a layer may hold fewer positions than another while
a draft runs ahead in the lower layers.
"""

from __future__ import annotations

import torch


class KVCache:
    """Keys and values per layer, shape (batch, kv heads, positions, head dim)."""

    def __init__(self, layers: int):
        self.keys: list[torch.Tensor | None] = [None] * layers
        self.values: list[torch.Tensor | None] = [None] * layers

    def update(self, key, value, layer_idx, *args, **kwargs):
        if self.keys[layer_idx] is None:
            self.keys[layer_idx], self.values[layer_idx] = key, value
        else:
            self.keys[layer_idx] = torch.cat([self.keys[layer_idx], key], dim=-2)
            self.values[layer_idx] = torch.cat([self.values[layer_idx], value], dim=-2)
        return self.keys[layer_idx], self.values[layer_idx]

    def length(self, layer: int) -> int:
        keys = self.keys[layer]
        return 0 if keys is None else keys.shape[-2]

    def crop(self, length: int, layers: range | None = None) -> None:
        """Keep the first `length` positions of `layers` (all by default)."""
        for layer in layers if layers is not None else range(len(self.keys)):
            if self.keys[layer] is not None:
                self.keys[layer] = self.keys[layer][..., :length, :]
                self.values[layer] = self.values[layer][..., :length, :]


class DecoderStack:
    """The modules of a causal LM, called one range of layers at a time."""

    def __init__(self, model):
        self.model = model
        inner = model.model
        self.embed = inner.embed_tokens
        self.layers = list(inner.layers)
        self.norm = inner.norm
        self.rotary = inner.rotary_emb
        self.head = model.lm_head
        self.num_layers = len(self.layers)

    def new_cache(self) -> KVCache:
        return KVCache(self.num_layers)

    def positions(self, hidden: torch.Tensor, start: int):
        """Rotary (cos, sin) and the additive causal mask for tokens at `start`, `start+1`, ..."""
        length = hidden.shape[1]
        ids = torch.arange(start, start + length, device=hidden.device).unsqueeze(0)
        rotary = self.rotary(hidden, ids)
        if length == 1:  # one new token attends to every cached position
            return rotary, None
        total = start + length
        query = torch.arange(start, total).unsqueeze(1)
        key = torch.arange(total).unsqueeze(0)
        mask = torch.zeros(length, total, dtype=hidden.dtype)
        mask.masked_fill_(key > query, torch.finfo(hidden.dtype).min)
        return rotary, mask[None, None]

    def run(
        self, hidden: torch.Tensor, first: int, last: int, cache: KVCache, start: int, where=None
    ) -> torch.Tensor:
        """Layers `first` .. `last - 1` over `hidden` (tokens at positions from `start`)."""
        rotary, mask = where if where is not None else self.positions(hidden, start)
        for layer in self.layers[first:last]:
            hidden = layer(
                hidden, attention_mask=mask, past_key_values=cache, position_embeddings=rotary
            )
        return hidden

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The model's own head on a final-space hidden state (the final norm, then lm_head)."""
        return self.head(self.norm(hidden))

    def fill_kv(self, hidden: torch.Tensor, first: int, last: int, cache: KVCache, start: int):
        """CALM's propagation: layers `first` .. `last - 1` get keys and values computed from
        `hidden` (the exit layer's state) through their own norm and k/v projections, without
        running their attention or MLP, so later tokens find no hole in the cache."""
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        cos, sin = self.rotary(hidden, torch.arange(start, start + hidden.shape[1]).unsqueeze(0))
        for index in range(first, last):
            layer = self.layers[index]
            attn = layer.self_attn
            normed = layer.input_layernorm(hidden)
            shape = (*hidden.shape[:-1], -1, attn.head_dim)
            key = attn.k_proj(normed).view(shape).transpose(1, 2)
            value = attn.v_proj(normed).view(shape).transpose(1, 2)
            _, key = apply_rotary_pos_emb(key, key, cos, sin)
            cache.update(key, value, index)
