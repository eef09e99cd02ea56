"""DeeBERT (Xin et al., ACL 2020): two-stage training, entropy exits.

Stage 1 fine-tunes the backbone and the final classifier (the exit at the last
layer) on the final classifier's loss alone. Stage 2 trains only the internal exit
heads ("highways": pooler -> dropout -> linear, poolers initialised from the
pre-trained pooler) with the unweighted sum of their losses, L = sum_{i<L} L_i;
backbone and final head are frozen. Both stages use the same learning rate and
number of epochs (castorini/DeeBERT, `run_highway_glue.py`).

Stage 1 is exactly plain fine-tuning (the `finetune` recipe: pooler -> dropout ->
linear on the last layer, the same loss, data, seed and settings), so when the config
also has a `finetune` method with the same backbone and training settings, the workflow
trains it once: DeeBERT's run loads that run's backbone and final head and trains
stage 2 only (`FIRST_STAGE`; `share_first_stage: false` trains both stages here). Its
weights then differ from a two-stage run only by random draws (head initialisation
order, dropout masks), not by procedure. Exit criterion:
entropy of the softmax below S; the last layer always answers.

Deviations from the released code, on purpose:
- Freezing is real here (`requires_grad=False`, not in the optimizer), and gradient
  clipping sees only the trainable parameters. The original leaves the backbone's
  `requires_grad` on and clips the global norm *including* backbone gradients, which
  shrinks the highway updates by an amount that depends on backbone gradients it
  never applies.
- The frozen backbone runs in eval mode in stage 2 (the released code leaves the whole
  model in train mode, so the frozen backbone still drops out). The highways then learn
  from the features they read at inference, and since those are fixed, each example's
  are computed once for the stage instead of once per epoch (`frozen_encoder`); the
  highways' own dropout stays on. The job is about twice as fast, and its internal exits
  score as well or better (measured in docs/performance.md).
- The original also entropy-checks a 12th highway that stage 2 never trains; here
  the final exit is the stage-1 classifier, and the last layer always answers.
"""

from __future__ import annotations

from early_exit.recipes.losses import (
    RecipeContext,
    check_internal_and_final_exits,
    exit_losses,
    head_params,
)
from early_exit.training.settings import TrainingSettings
from early_exit.training.stage import Stage

# What the deck and the tables say about this recipe (one place: read, never copied).
TITLE = "DeeBERT"
PAPER = "Xin et al., ACL 2020"
SUMMARY = (
    "two stages: backbone and final classifier, then the internal exits with the backbone frozen"
)
STATIC = False  # has exits below the last layer
FIRST_STAGE = "finetune"  # stage 1 is this recipe's training: the workflow shares that run
CRITERION = "entropy"  # the exit policy the paper uses
HEAD = "pooler"


def check(exit_layers: list[int], num_layers: int) -> None:
    check_internal_and_final_exits("DeeBERT", exit_layers, num_layers)


def stages(training: TrainingSettings, ctx: RecipeContext) -> list[Stage]:
    final = len(ctx.exit_layers) - 1
    final_head = head_params({final})
    highways = head_params(set(range(final)))

    def final_loss(logits, labels):
        return exit_losses(logits, labels, ctx.task_type)[final]

    def highway_loss(logits, labels):
        return exit_losses(logits, labels, ctx.task_type)[:final].sum()

    epochs, lr = training.epochs, training.learning_rate
    return [
        Stage(
            "deebert-1-backbone",
            final_loss,
            epochs,
            lr,
            trainable=lambda name: name.startswith("encoder.") or final_head(name),
        ),
        Stage(
            "deebert-2-highways",
            highway_loss,
            epochs,
            lr,
            trainable=highways,
            frozen_encoder=True,
        ),
    ]
