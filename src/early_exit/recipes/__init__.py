"""Training recipes: how each paper trains its exits.

A recipe module provides `HEAD` (the exit-head shape it uses) and
`stages(training) -> list[Stage]`. Stages run in order, each with its own
optimizer and schedule, so two-stage methods (DeeBERT) need no special casing.
"""

from __future__ import annotations

from types import ModuleType

from early_exit.errors import ConfigError
from early_exit.recipes import joint
from early_exit.recipes.stage import Stage

RECIPES: dict[str, ModuleType] = {"joint": joint}

__all__ = ["RECIPES", "Stage", "get_recipe"]


def get_recipe(name: str) -> ModuleType:
    if name not in RECIPES:
        raise ConfigError(f"recipe: unknown recipe {name!r}; allowed: {sorted(RECIPES)}")
    return RECIPES[name]
