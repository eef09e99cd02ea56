"""Target widths of a slenderized (COST-EFF) model: checked without importing torch, so the
workflow checks a config when it loads, and the pruning code uses the same rules."""

from __future__ import annotations

from early_exit.support.errors import ConfigError


def target_widths(config, heads: int, intermediate: int | None) -> tuple[int, int]:
    """Check a target width against the model; FFN defaults to intermediate / heads * kept."""
    total = int(config.num_attention_heads)
    inter = int(config.intermediate_size)
    if not 1 <= heads <= total:
        raise ConfigError(f"slenderize.heads: {heads} is not in 1..{total} (the model's heads)")
    if intermediate is None:
        if (inter * heads) % total:
            raise ConfigError(
                f"slenderize.heads: {heads} of {total} heads does not divide the FFN size "
                f"{inter} evenly; set slenderize.intermediate"
            )
        intermediate = inter * heads // total
    if not 1 <= intermediate <= inter:
        raise ConfigError(
            f"slenderize.intermediate: {intermediate} is not in 1..{inter} (the model's FFN size)"
        )
    return heads, intermediate


def check_slenderize(config, cfg: dict) -> tuple[int, int]:
    """Every width setting of a `slenderize` entry against the model config."""
    heads, inter = target_widths(config, cfg["heads"], cfg.get("intermediate"))
    removed = int(config.num_attention_heads) - heads
    per_step = cfg.get("heads_per_step", 1)
    if removed % per_step:
        raise ConfigError(
            f"slenderize.heads_per_step: {per_step} does not divide the {removed} heads to "
            f"remove ({config.num_attention_heads} -> {heads})"
        )
    rank = cfg.get("embedding_rank")
    if rank is not None and not 1 <= rank <= int(config.hidden_size):
        raise ConfigError(
            f"slenderize.embedding_rank: {rank} is not in 1..{config.hidden_size} "
            "(the model's hidden size)"
        )
    return heads, inter
