"""FLOPs per example at its real (unpadded) length, for the layers actually executed.

Counted with torch's FLOP counter (`torch.utils.flop_counter.FlopCounterMode`,
2 FLOPs per multiply-add) on forward passes at batch size 1; a hook on each exit's
classifier reads the running total, so the count for an exit covers every layer and
exit head executed before it answers. Attention runs in eager mode for the count:
the counter does not see inside fused CPU SDPA kernels. Only matrix products count
(biases, embedding lookups, softmax, GELU, tanh, LayerNorm, mean pooling: 0).
Sledgehammer's layer mix is written as a matrix product so that it counts too
(2*H*k per exit mixing k layers).

ELUE's counter (fastnlp/ElasticBERT `FLOPs/flops_counter.py`, ptflops-style forward
hooks) counts multiply-adds (its 'GFlops' strings are 2 x MACs): nn.Linear
numel(input) x out_features (no bias), and in its BertSelfAttention hook 3*s*h*h for
Q, K, V plus, per head, s^2 (scaling) + d*s^2 (Q K^T) + s^2 (softmax) + d*s^2 (A V).
It also counts the affine LayerNorm (2 x numel) and so the attention softmax and
scaling; GELU, tanh, dropout and embedding lookups count 0. Our counts therefore equal
2 x ELUE's MACs minus, per layer, 2 * (2 LayerNorms x 2*s*h + heads x 2*s^2) FLOPs
(plus 2 x 2*s*h for the embeddings' LayerNorm): for BERT-base at s = 128, 0.08% of
a layer's FLOPs. We leave them out on purpose: they are not matrix products and
torch's counter, the field's tool, does not see them; the difference is stated here.

The counter is slow (it intercepts every op), and an encoder's FLOPs are exactly a
quadratic polynomial in the sequence length s (projections and feed-forward grow
with s, attention scores with s^2; heads are constant). So we count at three
lengths, solve for the polynomial of each exit, verify it on a fourth counted
length, and evaluate it at every length present in the data.

`analytic_layer_flops` is the textbook count of one Transformer layer, used to
cross-check the counter in the tests.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode


def analytic_layer_flops(seq: int, hidden: int, intermediate: int) -> int:
    """One encoder layer at sequence length s: Q,K,V and output projections (4 * 2sh^2),
    attention scores and weighted values (2 * 2s^2h), feed-forward (2 * 2shI)."""
    return 8 * seq * hidden**2 + 4 * seq**2 * hidden + 4 * seq * hidden * intermediate


def cumulative_exit_flops(model, seq: int) -> np.ndarray:
    """FLOPs spent by the time each exit has answered, for one example of length `seq`.

    One forward pass under the counter; a hook on each exit's classifier reads the
    running total, which then covers every layer and head executed before it.
    """
    token = model.encoder.config.vocab_size - 1  # any id: the count does not depend on it
    ids = torch.full((1, seq), token, dtype=torch.long)
    mask = torch.ones_like(ids)
    totals: list[int] = []
    with FlopCounterMode(display=False) as counter:
        hooks = [
            head.register_forward_hook(lambda *_: totals.append(counter.get_total_flops()))
            for head in model.classifiers
        ]
        try:
            model(input_ids=ids, attention_mask=mask)
        finally:
            for hook in hooks:
                hook.remove()
    return np.array(totals, dtype=np.float64)


FIT_LENGTHS = (8, 16, 32)
CHECK_LENGTH = 24


@torch.no_grad()
def exit_flops_polynomial(model) -> np.ndarray:
    """Coefficients [E, 3] with FLOPs(exit e, length s) = c0 + c1*s + c2*s^2."""
    model = model.eval().cpu()
    config = model.encoder.config
    previous = config._attn_implementation
    config._attn_implementation = "eager"
    try:
        counted = {s: cumulative_exit_flops(model, s) for s in (*FIT_LENGTHS, CHECK_LENGTH)}
    finally:
        config._attn_implementation = previous
    vander = np.vander(np.array(FIT_LENGTHS, dtype=np.float64), 3, increasing=True)
    coef = np.linalg.solve(vander, np.stack([counted[s] for s in FIT_LENGTHS])).T  # [E, 3]
    predicted = coef @ np.array([1.0, CHECK_LENGTH, CHECK_LENGTH**2])
    if not np.allclose(predicted, counted[CHECK_LENGTH], rtol=1e-9):
        raise RuntimeError(
            f"FLOPs are not quadratic in the sequence length for this model: counted "
            f"{counted[CHECK_LENGTH]}, predicted {predicted} at length {CHECK_LENGTH}"
        )
    return coef


def evaluate(coef: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """FLOPs [N, E] of each example (by its length) exiting at each exit."""
    s = np.asarray(lengths, dtype=np.float64)
    return np.stack([np.ones_like(s), s, s**2], axis=1) @ coef.T


def per_example_flops(model, lengths: np.ndarray) -> np.ndarray:
    """FLOPs of each example when it exits at each exit: [N, E]."""
    return evaluate(exit_flops_polynomial(model), lengths)
