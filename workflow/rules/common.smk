# Config validation, the shared planning (which runs, which are timed and served) and the
# input functions every stage uses. The other rule files hold rules only: no function is
# defined in one rule file and used in another.
import json
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from early_exit.analysis.roles import method_info
from early_exit.config.check import check_config, schema_errors, task_policies
from early_exit.config.cluster import check_slurm_workflow
from early_exit.config.hub import cached_task, hub_datasets, hub_models
from early_exit.config.plan import served_runs, timed_runs
from early_exit.decoder.settings import decoder_settings
from early_exit.config.splitee_settings import (
    pair_alpha,
    splitee_outputs,
    splitee_settings,
    transfer_params,
)
from early_exit.recipes import get_recipe
from early_exit.slides.figures import FIGURE_SLIDES
from early_exit.modeling.backbone_source import cached_backbone
from early_exit.recipes.configured_methods import (
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
# The early-exit runs the latency stage times, and those of them the serving stage serves
# (one task, the first seed); the analysis notebooks and the deck read both.
TIMED = timed_runs(config, TASKS, DYNAMIC, METHOD_INFO, SEEDS)
SERVED = served_runs(TIMED, config["serving"]["task"], SEEDS[0])
# The SplitEE section (None: a config without one); splitee.smk, analysis.smk and the deck.
SPLITEE = splitee_settings(config)
# The decoder section (None: absent or disabled); decoder.smk and the deck.
try:
    DECODER = decoder_settings(config)
except ConfigError as err:
    raise WorkflowError(f"Invalid config: {err}") from None


def decoder_slide_inputs(wc):
    """The tables the decoder slides are computed from (none when the stage is off: the
    slide then says so)."""
    if DECODER is None:
        return {}
    return {
        "summary": "results/decoder/benchmark.tsv",
        "check": "results/decoder/check.tsv",
        "speculative": "results/decoder/sweep_speculative.tsv",
        "calm": "results/decoder/sweep_calm.tsv",
        "perplexity": "results/decoder/outputs/perplexity.tsv",
        "training": "results/decoder/exits/training.json",
        "figure": "results/analysis/decoder_tradeoff.png",
    }


# Scheduling (Snakemake runs the ready job with the highest priority first): the jobs that
# others wait on first, i.e. ElasticBERT's pre-training and the training it feeds, COST-EFF's
# slenderizing (the longest job) and the runs other methods start from (DeeBERT's first
# stage, COST-EFF's teacher); then longer sequences before shorter ones, so the short jobs
# fill the cores at the end instead of one long job running alone.
FEEDS_OTHERS = {first_stage_source(config, m) for m in METHOD_SPECS} | {
    spec["teacher"] for spec in METHOD_SPECS.values() if spec.get("teacher")
}


def job_priority(wc, chain=False):
    length = config["tasks"][wc.task].get("max_length") or 512
    waited_on = chain or wc.method in FEEDS_OTHERS or pretrained_backbone(wc) is not None
    return int(waited_on) + length / 10_000


def splitee_pair(wc):
    return next(
        p for p in SPLITEE["pairs"] if (p["source"], p["target"]) == (wc.source, wc.target)
    )


# Analysis notebooks (analysis.smk)
def run_dirs(methods):
    """The run directories of `methods` (every task and seed), as one papermill parameter."""
    return ",".join(path.rstrip("/") for path in run_files("", methods))


def notebook_shell(name, parameters):
    """Execute notebook `name` with papermill, passing each of `parameters` (params of the
    rule of the same name) with -p, plus out_dir. papermill writes the notebook cell by cell,
    so it writes a partial file that is renamed when done; then the HTML export. Papermill
    runs through early_exit.analysis.notebook: a broken input the notebook reads ends the
    log with one line and exit status 2, as a script's job does."""
    options = " ".join(f"-p {p} {{params.{p}:q}}" for p in parameters)
    partial = f"results/analysis/{name}.partial.ipynb"
    return (
        f"{{PYTHON}} -m early_exit.analysis.notebook {{input.notebook}} {partial}"
        f" -k python3 {options}"
        " -p out_dir results/analysis > {log} 2>&1"
        f" && mv {partial} {{output.notebook}}"
        " && {PYTHON} -m jupyter nbconvert --to html --output-dir results/analysis"
        " {output.notebook} >> {log} 2>&1"
    )


def notebook_outputs():
    """Every notebook's outputs (figures, tables, executed notebooks, HTML): the rules of
    analysis.smk, looked up when rule all asks (after every include)."""
    rules_ = (rules.operating_points, rules.tradeoff_notebook, rules.significance_notebook)
    rules_ += (rules.exits_notebook,)
    rules_ += (rules.calibration_notebook,)
    rules_ += (rules.difficulty_notebook, rules.seeds_notebook, rules.latency_notebook)
    if SERVED:  # the serving stage's task is one the config runs
        rules_ += (rules.serving_notebook,)
    if SPLITEE is not None:  # only configs with a splitee section
        rules_ += (rules.splitee_notebook,)
    if DECODER is not None:  # the decoder stage's notebook
        rules_ += (rules.decoder_notebook,)
    return [path for rule_ in rules_ for path in rule_.output]


def run_files(name, methods=METHODS):
    """`name` (a file in each run directory) for every task x method x seed."""
    pattern = "results/{task}/{method}/seed{seed}/" + name
    return expand(pattern, task=TASKS, method=methods, seed=SEEDS)


def final_outputs():
    outputs = run_files("sweep.tsv")
    outputs += notebook_outputs()
    if DECODER is not None:  # the decoder stage: its tables and the check of the sweeps
        outputs += [*rules.decoder_benchmark.output, *rules.decoder_sweep.output]
    if config["deck"]["enabled"]:
        outputs.append("results/slides/deck.pdf")
    return outputs


onstart:
    # impossible SLURM requests (partition, CPUs, memory, GPUs) stop here, not in sbatch
    check_slurm_workflow(workflow)
