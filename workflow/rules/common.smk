# Config validation and the input functions every stage shares.
import json
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from early_exit.cluster import check_slurm_workflow
from early_exit.config import (
    check_config,
    method_backbone,
    method_instances,
    schema_errors,
    task_policies,
    training_settings,
)
from early_exit.errors import ConfigError
from early_exit.recipes import get_recipe

SCHEMA = Path(workflow.current_basedir) / "../schemas/config.schema.yaml"
try:
    schema_errors(config, SCHEMA)  # one-line message naming the key
    validate(config, schema=str(SCHEMA))  # Snakemake's validation, fills in defaults
    check_config(config)  # what the schema cannot express
except ConfigError as err:
    raise WorkflowError(f"Invalid config: {err}") from None

# Tools run as modules of this interpreter, so rules work without an activated venv.
PYTHON = sys.executable

# Sources that live in the repository (the workflow may run in another directory).
REPO = Path(workflow.basedir)
NOTEBOOKS = REPO / "notebooks"
DECK_SRC = REPO / "slides"

TASKS = list(config["tasks"])
METHOD_SPECS = method_instances(config)  # static baselines expanded to one method per k
METHODS = list(METHOD_SPECS)
SEEDS = config["seeds"]
EVAL_SPLITS = ["dev", "test"]

wildcard_constraints:
    task="[A-Za-z0-9_.-]+",
    method="[A-Za-z0-9_.-]+",
    seed=r"\d+",


def run_dir(wc):
    return f"results/{wc.task}/{wc.method}/seed{wc.seed}"


def pretrained_backbone(wc):
    """Where the elastic pre-training output of a run lives (None: no pre-training)."""
    if METHOD_SPECS[wc.method].get("pretrain"):
        return f"{run_dir(wc)}/elastic_backbone"
    return None


def train_backbone(wc):
    """The backbone fine-tuning starts from: the method's, or its elastic pre-training output."""
    backbone = method_backbone(config, METHOD_SPECS[wc.method])
    pretrained = pretrained_backbone(wc)
    if pretrained:
        backbone = {**backbone, "name": pretrained, "format": "elasticbert"}
    return backbone


def methods_info():
    """Per method: recipe, reported criterion, and whether it is a static baseline."""
    info = {}
    for name, spec in METHOD_SPECS.items():
        recipe = get_recipe(spec["recipe"])
        info[name] = {
            "recipe": recipe.name,
            "criterion": spec.get("criterion", recipe.criterion),
            "static": recipe.name in ("static", "finetune"),
        }
    return info


def all_runs(pattern):
    """`pattern` expanded over every task x method x seed."""
    return expand(pattern, task=TASKS, method=METHODS, seed=SEEDS)


def final_outputs():
    outputs = all_runs("results/{task}/{method}/seed{seed}/sweep.tsv")
    outputs += rules.tradeoff_notebook.output
    if config["deck"]["enabled"]:
        outputs.append("results/slides/deck.pdf")
    return outputs


onstart:
    # impossible SLURM requests (partition, CPUs, memory, GPUs) stop here, not in sbatch
    check_slurm_workflow(workflow)
