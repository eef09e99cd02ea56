"""What every decoding method shares: checked knobs, the prefill, the stop rule, the result."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from early_exit.support.errors import ConfigError


@dataclass
class Decoded:
    """New tokens (up to and including an end token), the method's own counts, and its
    per-step trace (CALM: the exit layer of each token; speculative: the drafts accepted
    in each verification round), which the stage checks against its simulation."""

    tokens: list[int]
    stats: dict[str, float] = field(default_factory=dict)
    trace: list[int] = field(default_factory=list)


def check_int(value, key: str, low: int, high: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise ConfigError(f"{key}: an integer in {bound}, got {value!r}")
    return value


def check_fraction(value, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError(f"{key}: a number in [0, 1], got {value!r}")
    return float(value)


def end_tokens(model) -> set[int]:
    """The ids that end a generation (generation config, else the model config)."""
    ids = getattr(model.generation_config, "eos_token_id", None)
    if ids is None:
        ids = getattr(model.config, "eos_token_id", None)
    if ids is None:
        return set()
    return {int(i) for i in (ids if isinstance(ids, (list, tuple)) else [ids])}


@torch.no_grad()
def prefill(stack, prompt: list[int], cache) -> int:
    """Run the prompt through every layer into `cache`; return the first new token."""
    hidden = stack.run(stack.embed(torch.tensor([prompt])), 0, stack.num_layers, cache, 0)
    return int(stack.logits(hidden[:, -1]).argmax(-1))


def finish(tokens: list[int], ends: set[int], limit: int) -> tuple[list[int], bool]:
    """Cut at the first end token (kept) or at `limit`; whether generation is over."""
    for index, token in enumerate(tokens):
        if token in ends:
            return tokens[: index + 1][:limit], True
    return tokens[:limit], len(tokens) >= limit
