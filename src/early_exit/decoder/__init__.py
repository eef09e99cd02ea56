"""Token-level early exit in a decoder (issue 36): a causal LM loaded offline (the packaged
SmolLM2-135M-Instruct GGUF) or from the hub, exit maps trained with the backbone frozen,
self-speculative decoding with an early-exit draft, CALM-style token exits, and
transformers' own `assistant_early_exit` as the peer. See docs/decoder.md.
"""
