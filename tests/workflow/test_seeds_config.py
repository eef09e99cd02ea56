"""config/seeds.yaml, laid over the default config as docs/statistics.md runs it: a valid
five-seed config whose plan times every seed's runs and measures the whole test split."""

import subprocess
from pathlib import Path

import yaml
from snakemake.utils import update_config, validate
from workflow_cli import OFFLINE, workflow_command

from early_exit.config.check import check_config, schema_errors

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def seeds_config() -> dict:
    """Later config files update earlier ones (Snakemake's update_config)."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    update_config(config, yaml.safe_load((REPO / "config" / "seeds.yaml").read_text()))
    return config


def test_seeds_config_is_a_valid_five_seed_config():
    config = seeds_config()
    schema_errors(config, SCHEMA)
    validate(config, str(SCHEMA))
    check_config(config)
    assert len(config["seeds"]) == len(set(config["seeds"])) == 5
    assert 13 in config["seeds"]  # the default run's seed: its runs are reused


def test_its_plan_times_every_seed_and_measures_the_whole_test_split(tmp_path):
    command = workflow_command(tmp_path, REPO / "config" / "config.yaml", "-n")
    command.append(str(REPO / "config" / "seeds.yaml"))
    result = subprocess.run(command, capture_output=True, text=True, env=OFFLINE, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    plan = result.stdout
    latency = plan[plan.index("rule latency:") :].split("\n\n")[0]
    assert "results/analysis/measured_speedup.tsv" in latency
    for seed in seeds_config()["seeds"]:
        for task in ("bbc-news", "bbc-headlines"):
            assert f"results/{task}/deebert/seed{seed}/latency.tsv" in latency
    # the results tables and the method slides read the measurement
    for rule in ("tradeoff_notebook", "deck_slides", "latency_notebook"):
        job = plan[plan.index(f"rule {rule}:") :].split("\n\n")[0]
        assert "results/analysis/measured_speedup.tsv" in job, rule
