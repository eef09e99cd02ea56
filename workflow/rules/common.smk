# Config validation and the input functions every stage shares.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from early_exit.config import check_config, schema_errors, training_settings
from early_exit.errors import ConfigError

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
METHODS = list(config["methods"])
SEEDS = config["seeds"]
EVAL_SPLITS = ["dev", "test"]

wildcard_constraints:
    task="[A-Za-z0-9_.-]+",
    method="[A-Za-z0-9_.-]+",
    seed=r"\d+",


def run_dir(wc):
    return f"results/{wc.task}/{wc.method}/seed{wc.seed}"


def all_runs(pattern):
    """`pattern` expanded over every task x method x seed."""
    return expand(pattern, task=TASKS, method=METHODS, seed=SEEDS)


def final_outputs():
    outputs = all_runs("results/{task}/{method}/seed{seed}/sweep.tsv")
    outputs += ["results/analysis/tradeoff.png", "results/analysis/results_table.md"]
    if config["deck"]["enabled"]:
        outputs.append("results/slides/deck.pdf")
    return outputs
