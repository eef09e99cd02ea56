"""BERxiT (Xin et al., EACL 2021): alternating fine-tuning and a learned exit (LTE).

Exit heads as DeeBERT's highways (a pooler per exit, initialised from the pre-trained
pooler -> dropout -> linear). One learning-to-exit gate is shared by every exit:
u_i = sigmoid(w . h_i + b), h_i the exit's pooled vector after dropout, the one its
classifier reads (castorini/berxit, `modeling_highway_bert.py`: `lte_input =
highway_exit[1]`, not detached). The gate predicts whether exit i is *wrong*:
target 1 - 1[argmax z_i == y] for classification, |tanh(z_i - y)| for regression
(detached); L_lte = MSE over every exit and example.

Training (`train_routine alternate-lte`, `run_highway_glue.py`): one optimizer over
all parameters (backbone, heads, gate); even steps minimise L_final + L_lte, odd
steps sum_{i<L} L_i + L_lte. The backbone is trained on both kinds of step. Released
defaults: BERT 3 epochs, lr 2e-5, batch 8, seq 128 (`scripts/train_highway.sh`).
Exit criterion: the first exit with u_i < threshold answers (the released default
threshold is 0.005 at every layer); the last exit answers when none fires.

Deviations from the released code:
- Parity is taken of the global optimizer step; the released code uses the batch
  index within the epoch, so with an odd number of batches per epoch its parity
  flips between epochs. Same alternation, without that artefact.
- The released gate at the last layer reads the 12th highway's pooled output while
  its target uses the final classifier; here the last exit *is* the final classifier,
  so the gate reads the vector that classifier reads.
"""

from __future__ import annotations

from early_exit.recipes.losses import RecipeContext, check_internal_and_final_exits, exit_losses
from early_exit.support.errors import ConfigError
from early_exit.training.settings import TrainingSettings
from early_exit.training.stage import Stage

# What the deck and the tables say about this recipe (one place: read, never copied).
TITLE = "BERxiT"
PAPER = "Xin et al., EACL 2021"
SUMMARY = (
    "alternating steps (final exit / internal exits) plus a learned gate that predicts "
    "whether each exit is wrong"
)
STATIC = False  # has exits below the last layer
CRITERION = "learned"  # exit when the learned gate's output is below a threshold
HEAD = "pooler"
EXIT_GATE = "lte"


def check(exit_layers: list[int], num_layers: int) -> None:
    check_internal_and_final_exits("BERxiT", exit_layers, num_layers)


def lte_targets(logits, labels, task_type: str):
    """What the gate should output per example and exit, [batch, n_exits] (detached):
    1 where the exit is wrong (classification), |tanh(z_i - y)| for regression."""
    import torch

    with torch.no_grad():
        if task_type == "regression":
            return torch.tanh(logits[..., 0] - labels.to(logits.dtype)[:, None]).abs()
        return (logits.argmax(-1) != labels[:, None]).to(logits.dtype)


def alternate_lte_loss(logits, scores, labels, task_type: str, step: int):
    """BERxiT's `alternate-lte` loss for one batch at optimizer step `step`."""
    import torch.nn.functional as F

    per_exit = exit_losses(logits, labels, task_type)
    lte = F.mse_loss(scores, lte_targets(logits, labels, task_type))
    exits = per_exit[-1] if step % 2 == 0 else per_exit[:-1].sum()
    return exits + lte


def stages(training: TrainingSettings, ctx: RecipeContext) -> list[Stage]:
    def step_loss(model, batch, step):
        from early_exit.training.batching import model_inputs  # torch: not at import

        out = model(**model_inputs(batch))
        if out.exit_scores is None:
            raise ConfigError("recipe: berxit needs a model with an exit gate (exit_gate: lte)")
        return alternate_lte_loss(
            out.logits.float(), out.exit_scores.float(), batch["labels"], ctx.task_type, step
        )

    return [Stage("berxit", None, training.epochs, training.learning_rate, step_loss=step_loss)]
