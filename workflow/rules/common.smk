# Config validation and the input functions every stage shares.
import json
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from early_exit.analysis.roles import method_info
from early_exit.config.check import check_config, schema_errors, task_policies
from early_exit.config.cluster import check_slurm_workflow
from early_exit.config.hub import cached_task, hub_datasets, hub_models
from early_exit.recipes import get_recipe
from early_exit.modeling.backbone_source import cached_backbone
from early_exit.recipes.instances import (
    first_stage_source,
    method_backbone,
    method_instances,
    training_settings,
)
from early_exit.support.errors import ConfigError
from early_exit.support.layout import run_dir

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
SEEDS = config["seeds"] if isinstance(config["seeds"], list) else [config["seeds"]]

wildcard_constraints:
    task="[A-Za-z0-9_.-]+",
    method="[A-Za-z0-9_.-]+",
    seed=r"\d+",


def every_core():
    """All the cores of a local run, so that a timing job runs alone; on a cluster
    (no --cores) each job is its own allocation, and 8 threads as the training jobs."""
    try:
        return workflow.cores
    except WorkflowError:
        return 8


def model_threads():
    """Threads of a model job (pre-training, training, slenderizing, prediction): half the
    cores of a local run, so two run side by side. Their start-up (imports, loading) then
    overlaps, and two 1-thread trainings do more work than one 2-thread training on a
    2-core CPU (scripts/bench_threads.py; docs/performance.md). On a cluster 8 (profiles
    set their own)."""
    try:
        return max(1, workflow.cores // 2)
    except WorkflowError:
        return 8


# Hub models and datasets are read from a local copy when `hub_cache` is set.
HUB_CACHE = config["hub_cache"] or "data/hub"
HUB_MODELS = hub_models(config)
HUB_DATASETS = hub_datasets(config)


def dataset_copy(wc):
    """The task's downloaded dataset, when it comes from the hub through `hub_cache`."""
    source = cached_task(config, wc.task).get("source") or {}
    return source.get("local_copy", [])


def method_start(wc):
    """The backbone a method's first stage loads (hub ids mapped to their cached copy)."""
    return cached_backbone(config, method_backbone(config, METHOD_SPECS[wc.method]))


def backbone_copy(wc):
    """The downloaded model a method starts from (an input), when its backbone is cached."""
    configured = method_backbone(config, METHOD_SPECS[wc.method])["name"]
    start = method_start(wc)["name"]
    return start if start != configured else []


def trained_by(spec):
    """How a method instance is trained: "stages" (rule train) or "slenderize" (its recipe says)."""
    return get_recipe(spec["recipe"]).trained_by


def pretrained_backbone(wc):
    """Where the elastic pre-training output of a run lives (None: no pre-training)."""
    if METHOD_SPECS[wc.method].get("pretrain"):
        return f"{run_dir(wc.task, wc.method, wc.seed)}/elastic_backbone"
    return None


def first_stage_model(wc):
    """The model of the run that already trained this run's first stage (DeeBERT's stage 1
    is the `finetune` run of the same seed), or [] when the run trains every stage."""
    source = first_stage_source(config, wc.method)
    return f"{run_dir(wc.task, source, wc.seed)}/model" if source else []


def train_backbone(wc):
    """The backbone fine-tuning starts from: the method's, or its elastic pre-training output."""
    backbone = method_start(wc)
    pretrained = pretrained_backbone(wc)
    if pretrained:
        backbone = {**backbone, "name": pretrained, "format": "elasticbert"}
    return backbone


# recipe, criterion, static, backbone, ELUE curve and reference of every method:
METHOD_INFO = method_info(config)  # the notebooks and the deck receive it as a parameter
# Methods with exit heads below the last layer (not the static baselines or plain fine-tuning).
DYNAMIC = [m for m, i in METHOD_INFO.items() if not i["static"]]


def run_files(name, methods=METHODS):
    """`name` (a file in each run directory) for every task x method x seed."""
    pattern = "results/{task}/{method}/seed{seed}/" + name
    return expand(pattern, task=TASKS, method=methods, seed=SEEDS)


def final_outputs():
    outputs = run_files("sweep.tsv")
    outputs += notebook_outputs()  # analysis.smk
    if config["deck"]["enabled"]:
        outputs.append("results/slides/deck.pdf")
    return outputs


onstart:
    # impossible SLURM requests (partition, CPUs, memory, GPUs) stop here, not in sbatch
    check_slurm_workflow(workflow)
