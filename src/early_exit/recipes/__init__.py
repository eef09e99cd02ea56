"""Training recipes: how each paper trains its exits, one module per paper.

A recipe module is the one place that knows its method. It provides `TITLE`, `PAPER`
and `SUMMARY` (what the deck and tables say about it), `STATIC` (a single-exit
baseline with no knob), `HEAD` (the exit-head shape), `stages(training, ctx)`, and
optionally `CRITERION` (its paper's exit policy), `REFERENCE_CURVE` (its models are the
points of the ELUE reference curve of their backbone), `GRADIENT_EQUILIBRIUM`, `EXIT_GATE`
(a learned exit gate the model carries, e.g. BERxiT's "lte"), `TRAINING`
(the paper's settings where they differ from the global ones, e.g. the schedule),
`FIRST_STAGE` (a recipe whose run is this one's first stage), `TRAINED_BY`
("slenderize": trained from a teacher method's model by rule `slenderize`, not
through `stages()`), `PRETRAINING` ("elastic": a method may pre-train its backbone
first) and `check(exit_layers, num_layers)`. The workflow routes a method by these
declarations, never by the recipe's name. Adding a recipe: write its module, add it
to `RECIPES` below, and use it in a config (docs/adding-a-method.md). Stages run in
order, each with its own optimizer and schedule, so two-stage methods (DeeBERT) need no
special casing in the training loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from early_exit.recipes import (
    berxit,
    costeff,
    deebert,
    elasticbert,
    finetune,
    joint,
    pabee,
    sledgehammer,
    static,
)
from early_exit.recipes.losses import RecipeContext
from early_exit.support.errors import ConfigError
from early_exit.training.settings import TrainingSettings
from early_exit.training.stage import Stage

__all__ = ["RECIPES", "Recipe", "RecipeContext", "Stage", "get_recipe"]


@dataclass(frozen=True)
class Recipe:
    name: str
    module: ModuleType
    default_exits: str = "all"  # "all" layers, or "last" (plain fine-tuning)

    @property
    def head(self) -> str:
        return self.module.HEAD

    @property
    def title(self) -> str:
        return self.module.TITLE

    @property
    def paper(self) -> str:
        return self.module.PAPER

    @property
    def summary(self) -> str:
        return self.module.SUMMARY

    @property
    def first_stage(self) -> str | None:
        """A recipe whose training equals this one's first stage (trained once, shared)."""
        return getattr(self.module, "FIRST_STAGE", None)

    @property
    def training_defaults(self) -> dict:
        """The paper's training settings that differ from the global defaults."""
        return dict(getattr(self.module, "TRAINING", {}))

    @property
    def static(self) -> bool:
        """A single-exit baseline: no knob, drawn as a reference point."""
        return self.module.STATIC

    @property
    def reference_curve(self) -> bool:
        """Its models are points of the static reference curve of their backbone (ELUE)."""
        return getattr(self.module, "REFERENCE_CURVE", False)

    @property
    def criterion(self) -> str | None:
        """The exit policy of the method's paper (None for single-exit baselines)."""
        return getattr(self.module, "CRITERION", None)

    @property
    def trained_by(self) -> str:
        """How the workflow trains it: "stages" (rule `train`, through `stages()`) or
        "slenderize" (rule `slenderize`, from its `teacher` method's trained model)."""
        return getattr(self.module, "TRAINED_BY", "stages")

    @property
    def pretraining(self) -> str | None:
        """The pre-training a method of this recipe may start from (its `pretrain:`
        settings): "elastic" (`early_exit.runners.elastic_pretrain`), or None."""
        return getattr(self.module, "PRETRAINING", None)

    @property
    def gradient_equilibrium(self) -> bool:
        return getattr(self.module, "GRADIENT_EQUILIBRIUM", False)

    @property
    def exit_gate(self) -> str | None:
        """The learned exit gate the recipe trains ("lte": BERxiT), or None."""
        return getattr(self.module, "EXIT_GATE", None)

    def check(self, exit_layers: list[int], num_layers: int) -> None:
        if hasattr(self.module, "check"):
            self.module.check(exit_layers, num_layers)

    def stages(self, training: TrainingSettings, ctx: RecipeContext) -> list[Stage]:
        return self.module.stages(training, ctx)


RECIPES: dict[str, Recipe] = {
    "joint": Recipe("joint", joint),
    "deebert": Recipe("deebert", deebert),
    "pabee": Recipe("pabee", pabee),
    "berxit": Recipe("berxit", berxit),
    "sledgehammer": Recipe("sledgehammer", sledgehammer),
    "elasticbert": Recipe("elasticbert", elasticbert),
    "finetune": Recipe("finetune", finetune, default_exits="last"),
    "static": Recipe("static", static, default_exits="last"),
    "costeff": Recipe("costeff", costeff),
}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ConfigError(f"recipe: unknown recipe {name!r}; allowed: {', '.join(sorted(RECIPES))}")
    return RECIPES[name]
