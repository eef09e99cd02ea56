"""ElasticBERT (Liu et al., NAACL 2022): joint fine-tuning with gradient equilibrium.

Fine-tuning (fastnlp/ElasticBERT, `finetune-dynamic/models/modeling_elasticbert_*`):
a pooler per layer (from the multi-exit pre-trained checkpoint) -> dropout -> a
linear head per layer; the loss is the plain sum of exit losses; gradient
equilibrium rescales gradients in the backward pass (the hidden state into exit i
by 1/(L-i), the path onward by (L-i-1), 0-based i; see `early_exit.modeling.model`).
Exit criteria: entropy or patience. Static use: truncate to the first k layers
(`early_exit.recipes.static`).

The backbone is either a released ElasticBERT checkpoint (`backbone.format:
elasticbert`, e.g. fnlp/elasticbert-base, read by `early_exit.modeling.elasticbert_io`) or
the output of our elastic pre-training stage (`early_exit.recipes.elastic_pretrain`), which
continues masked-LM training of any BERT with a loss at every layer.
"""

from __future__ import annotations

from early_exit.recipes.losses import RecipeContext, summed_exit_losses
from early_exit.training.settings import TrainingSettings
from early_exit.training.stage import Stage

# What the deck and the tables say about this recipe (one place: read, never copied).
TITLE = "ElasticBERT"
PAPER = "Liu et al., NAACL 2022"
SUMMARY = (
    "elastic MLM pre-training with a loss at every layer, then joint fine-tuning "
    "with gradient equilibrium"
)
STATIC = False  # has exits below the last layer
CRITERION = "entropy"  # the exit policy the paper uses
HEAD = "pooler"
GRADIENT_EQUILIBRIUM = True
PRETRAINING = "elastic"  # a method may pre-train its backbone first (`pretrain:`)


def stages(training: TrainingSettings, ctx: RecipeContext) -> list[Stage]:
    return [Stage("elasticbert", summed_exit_losses(ctx), training.epochs, training.learning_rate)]
