"""Self-speculative decoding with an early-exit draft (LayerSkip / Draft & Verify style).

Draft: the first E layers, the exit map of layer E, the final norm and the head, one token
at a time, up to `draft_length` tokens (fewer when the exit's confidence unit falls below
`draft_stop`: the head is then not computed). Verify: the full model over the pending
token and the drafts in one pass with the KV cache; accept the longest prefix of drafts
that the full model would have chosen greedily, plus the full model's own next token. The
output is the full model's greedy output (up to float round-off: the verification runs
the upper layers over several tokens at once, plain greedy over one).

The KV cache: the draft writes layers 1..E for every drafted token; those entries are
exactly what the full model computes there (same tokens, same layers), so verification
reuses them and the draft's layer-E states (LayerSkip's "exit query cache"): only the last
draft goes through layers 1..E again, then layers E+1..L run over all of them, filling the
upper layers' cache. Rejected positions are cropped from every layer. No hole remains.

The draft's head: the full head (49,152 rows for SmolLM2) costs as much as ~8 layers per
drafted token. With a `DraftVocabulary` the draft scores only the most frequent tokens of
the exits' training text; a token outside it is never drafted (the verification, over the
full vocabulary, still gives it), so the output stays greedy's.
"""

from __future__ import annotations

import torch

from early_exit.decoder.decoding import Decoded, check_fraction, check_int, end_tokens, finish
from early_exit.decoder.decoding import prefill as run_prefill
from early_exit.support.errors import ConfigError


class DraftVocabulary:
    """The `size` most frequent token ids of `sequences` and their rows of the head."""

    def __init__(
        self, stack, sequences: list[list[int]], size: int, ranked: list[int] | None = None
    ):
        """From `sequences` (counted here), or from `ranked`: ids most frequent first."""
        check_int(size, "decoder speculative draft_vocab", 1)
        if ranked is not None:
            order = torch.tensor(ranked[:size], dtype=torch.long)
        else:
            counts = torch.bincount(
                torch.tensor([t for seq in sequences for t in seq], dtype=torch.long),
                minlength=stack.head.weight.shape[0],
            )
            seen = int((counts > 0).sum())
            order = torch.argsort(counts, descending=True, stable=True)[: min(size, seen)]
        self.ids = torch.sort(order).values
        self.weight = stack.head.weight[self.ids].detach().clone()
        self.bias = None if stack.head.bias is None else stack.head.bias[self.ids].detach()
        self.norm = stack.norm

    def __len__(self) -> int:
        return len(self.ids)

    def top(self, mapped: torch.Tensor) -> int:
        return int(self.tops(mapped).reshape(-1)[0])

    def tops(self, mapped: torch.Tensor) -> torch.Tensor:
        """The top id within the vocabulary for each row of `mapped`."""
        logits = torch.nn.functional.linear(self.norm(mapped), self.weight, self.bias)
        return self.ids[logits.argmax(-1)]


@torch.no_grad()
def speculative_generate(
    stack,
    exits,
    prompt: list[int],
    exit_layer: int,
    draft_length: int,
    max_new_tokens: int,
    draft_stop: float = 0.0,
    vocabulary: DraftVocabulary | None = None,
) -> Decoded:
    if exit_layer not in exits.layers:
        raise ConfigError(
            f"decoder speculative exit_layer: {exit_layer!r} has no trained exit "
            f"(trained: {exits.layers})"
        )
    check_int(draft_length, "decoder speculative draft_length", 1, 64)
    check_int(max_new_tokens, "decoder max_new_tokens", 1)
    check_fraction(draft_stop, "decoder speculative draft_stop")
    ends = end_tokens(stack.model)
    top = stack.num_layers
    cache = stack.new_cache()
    pending = run_prefill(stack, prompt, cache)
    out, done = finish([pending], ends, max_new_tokens)
    position = len(prompt)  # the pending token's position, not yet in the cache
    drafted = accepted = rounds = 0
    per_round: list[int] = []
    while not done:
        budget = min(draft_length, max_new_tokens - len(out) - 1)
        drafts: list[int] = []
        states: list[torch.Tensor] = []
        token = pending
        while len(drafts) < budget:
            state = stack.run(
                stack.embed(torch.tensor([[token]])), 0, exit_layer, cache, position + len(drafts)
            )
            states.append(state)
            mapped = exits.mapped(exit_layer, state[:, -1])
            if draft_stop > 0 and float(exits.score(exit_layer, mapped)) < draft_stop:
                break
            if vocabulary is None:
                token = int(stack.logits(mapped).argmax(-1))
            else:
                token = vocabulary.top(mapped)
            drafts.append(token)
            if token in ends:
                break
        # The verified tokens: the pending one and every draft. Their layer-E states exist
        # for all but the last draft (or, when `draft_stop` ended the draft, for all).
        if len(states) == len(drafts):
            last = drafts[-1] if drafts else pending
            where = position + len(drafts)
            states.append(
                stack.run(stack.embed(torch.tensor([[last]])), 0, exit_layer, cache, where)
            )
        hidden = stack.run(torch.cat(states, dim=1), exit_layer, top, cache, position)
        choices = stack.logits(hidden[0]).argmax(-1).tolist()
        agreed = 0
        while agreed < len(drafts) and drafts[agreed] == choices[agreed]:
            agreed += 1
        new = drafts[:agreed] + [choices[agreed]]
        drafted += len(drafts)
        accepted += agreed
        per_round.append(agreed)
        rounds += 1
        cache.crop(position + agreed + 1)
        position += agreed + 1
        new, done = finish(new, ends, max_new_tokens - len(out))
        out += new
        done = done or len(out) >= max_new_tokens
        pending = out[-1]
    stats = {
        "rounds": rounds,
        "drafted": drafted,
        "accepted": accepted,
        "acceptance": accepted / drafted if drafted else float("nan"),
        "mean_draft": drafted / rounds if rounds else float("nan"),
    }
    return Decoded(out, stats, per_round)
