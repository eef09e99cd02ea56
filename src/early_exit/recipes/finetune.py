"""Plain fine-tuning: the backbone and one head on the last layer (the `finetune` baseline).

Ordinary BERT fine-tuning: pooler -> dropout -> linear on the last layer, cross-entropy
(MSE for regression), one stage. DeeBERT's first stage is exactly this, so the workflow
trains it once and DeeBERT's second stage starts from this run's model.
"""

from __future__ import annotations

from early_exit.recipes.losses import RecipeContext
from early_exit.recipes.static import check, single_exit_stage
from early_exit.training.settings import TrainingSettings
from early_exit.training.stage import Stage

__all__ = ["check", "stages"]

TITLE = "Fine-tuning"
PAPER = "Devlin et al., NAACL 2019"
SUMMARY = "the backbone and one head on the last layer"
STATIC = True  # a single exit: no knob; scored against the ELUE curve, not a point of it
HEAD = "pooler"


def stages(training: TrainingSettings, ctx: RecipeContext) -> list[Stage]:
    return [single_exit_stage(training, ctx)]
