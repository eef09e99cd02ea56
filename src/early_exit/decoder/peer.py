"""transformers' own decoding on the same model: plain greedy `generate`, and its
self-speculative `assistant_early_exit` (the first E layers with the model's own head
draft, the full model verifies; no trained exits), the peer our methods are measured
against."""

from __future__ import annotations

import torch

from early_exit.decoder.decoding import Decoded, check_int


@torch.no_grad()
def hf_generate(
    model, prompt: list[int], max_new_tokens: int, assistant_early_exit=None
) -> Decoded:
    check_int(max_new_tokens, "decoder max_new_tokens", 1)
    kwargs = {}
    if assistant_early_exit is not None:
        layers = model.config.num_hidden_layers
        check_int(assistant_early_exit, "decoder peer assistant_early_exit", 1, layers - 1)
        kwargs["assistant_early_exit"] = assistant_early_exit
    ids = torch.tensor([prompt])
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        **kwargs,
    )
    return Decoded(out[0, len(prompt) :].tolist())
