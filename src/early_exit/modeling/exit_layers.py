"""Which layers carry an exit: config value -> validated list (no torch import)."""

from __future__ import annotations

from early_exit.support.errors import ConfigError


def resolve_exit_layers(spec: str | list[int], num_layers: int) -> list[int]:
    """`"all"`, `"last"` or a list of 1-based layer numbers -> sorted, validated list."""
    if spec == "all":
        return list(range(1, num_layers + 1))
    if spec == "last":
        return [num_layers]
    if not isinstance(spec, list) or not spec:
        raise ConfigError(f"exit_layers: expected 'all', 'last' or a non-empty list, got {spec!r}")
    bad = [x for x in spec if not isinstance(x, int) or not 1 <= x <= num_layers]
    if bad:
        raise ConfigError(
            f"exit_layers: {bad} outside the backbone's layers; allowed 1..{num_layers}"
        )
    if len(set(spec)) != len(spec):
        raise ConfigError(f"exit_layers: duplicate layers in {spec}")
    return sorted(spec)
