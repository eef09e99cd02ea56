"""CALM-style token-level early exit (Schuster et al., NeurIPS 2022).

Each new token runs up the layers; at every trained exit the exit's confidence unit (one
linear unit on the mapped state, `early_exit.decoder.exits`) is compared with
`threshold`, and the token exits at the first exit whose confidence is above it: the head
runs once, on that exit's mapped state. A threshold of 1 never exits (a sigmoid is at most
1, and the test is strictly greater), so the output is plain greedy.

The skipped layers' KV cache: CALM's propagation. The exit layer's residual stream is
copied up as the input of every skipped layer, and each skipped layer computes its keys
and values from it (its own norm, k/v projections and rotary positions), but not its
attention or MLP; later tokens attend to those entries. The output therefore differs from
full decoding: measure it (agreement with the full model, perplexity under it).
"""

from __future__ import annotations

import torch

from early_exit.decoder.decoding import Decoded, check_fraction, check_int, end_tokens, finish
from early_exit.decoder.decoding import prefill as run_prefill


@torch.no_grad()
def calm_generate(
    stack, exits, prompt: list[int], threshold: float, max_new_tokens: int
) -> Decoded:
    check_fraction(threshold, "decoder calm threshold")
    check_int(max_new_tokens, "decoder max_new_tokens", 1)
    ends = end_tokens(stack.model)
    top = stack.num_layers
    cache = stack.new_cache()
    token = run_prefill(stack, prompt, cache)
    out, done = finish([token], ends, max_new_tokens)
    position = len(prompt)
    layers_used: list[int] = []
    while not done:
        hidden = stack.embed(torch.tensor([[token]]))
        where = stack.positions(hidden, position)
        reached = 0
        logits = None
        for layer in exits.layers:
            hidden = stack.run(hidden, reached, layer, cache, position, where)
            reached = layer
            mapped = exits.mapped(layer, hidden[:, -1])
            if float(exits.score(layer, mapped)) > threshold:
                logits = stack.logits(mapped)
                stack.fill_kv(hidden, layer, top, cache, position)
                break
        if logits is None:
            hidden = stack.run(hidden, reached, top, cache, position, where)
            logits = stack.logits(hidden[:, -1])
            reached = top
        layers_used.append(reached)
        token = int(logits.argmax(-1))
        position += 1
        new, done = finish([token], ends, max_new_tokens - len(out))
        out += new
        done = done or len(out) >= max_new_tokens
    mean_layer = sum(layers_used) / len(layers_used) if layers_used else float(top)
    # the first token comes from the prefill, through every layer
    stats = {
        "mean_exit_layer": (mean_layer * len(layers_used) + top) / (len(layers_used) + 1),
        "exited": sum(layer < top for layer in layers_used),
        "steps": len(layers_used),
    }
    # the first token comes from the prefill (every layer); the end cut keeps the rest aligned
    return Decoded(out, stats, ([top] + layers_used)[: len(out)])


@torch.no_grad()
def full_model_view(stack, prompt: list[int], tokens: list[int]) -> dict[str, float]:
    """How the full model sees a generation: the fraction of its tokens that are the full
    model's greedy choice given the same prefix, and its perplexity under the full model."""
    ids = torch.tensor([prompt + tokens])
    hidden = stack.run(stack.embed(ids), 0, stack.num_layers, stack.new_cache(), 0)
    logits = stack.logits(hidden[0, len(prompt) - 1 : -1])
    target = torch.tensor(tokens)
    nll = torch.nn.functional.cross_entropy(logits, target)
    return {
        "full_model_agreement": (logits.argmax(-1) == target).float().mean().item(),
        "perplexity": float(torch.exp(nll)),
    }
