import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from early_exit.config import check_config, schema_errors, training_settings
from early_exit.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def default_config():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


@pytest.mark.parametrize("name", ["config.yaml", "smoke.yaml"])
def test_shipped_configs_are_valid(name):
    config = yaml.safe_load((REPO / "config" / name).read_text())
    schema_errors(config, SCHEMA)
    validate(config, str(SCHEMA))
    check_config(config)
    assert config["training"]["max_grad_norm"] == 1.0  # defaults filled by the schema
    assert config["deck"]["enabled"] is True


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["training"].update(epoch=3), "training: .*'epoch' was unexpected"),
        (lambda c: c.pop("seeds"), "'seeds' is a required property"),
        (lambda c: c["tasks"]["bbc-news"].update(max_lenght=3), "tasks.bbc-news: .*max_lenght"),
        (lambda c: c["training"].update(learning_rate="fast"), "training.learning_rate"),
        (lambda c: c["backbone"].update(pooling="max"), "backbone.pooling"),
        (lambda c: c.update(device="gpu"), "device"),
    ],
)
def test_schema_errors_name_the_key(edit, message):
    config = default_config()
    edit(config)
    with pytest.raises(ConfigError, match=message):
        schema_errors(config, SCHEMA)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["tasks"].update({"bbc-sport": {}}), "task 'bbc-sport' is not a builtin"),
        (lambda c: c["methods"]["joint"].update(recipe="deebert2"), "methods.joint.recipe"),
        (
            lambda c: c["methods"]["joint"].update(exit_layers=[2, 7]),
            r"methods.joint.exit_layers: \[7\] outside .* allowed 1..6",
        ),
        (
            lambda c: c["tasks"]["bbc-news"].update(source={"type": "bbc", "corpus_dir": "/nope"}),
            "tasks.bbc-news.source.corpus_dir: path '/nope' does not exist",
        ),
        (
            lambda c: c["tasks"].update(
                mine={"source": {"type": "files", "format": "tsv", "train": "missing.tsv"}}
            ),
            "tasks.mine.source.train: path 'missing.tsv' does not exist",
        ),
        (lambda c: c["backbone"].update(name="./no/such/model"), "backbone.name"),
    ],
)
def test_semantic_errors_name_the_key(edit, message):
    config = default_config()
    edit(config)
    with pytest.raises(ConfigError, match=message):
        check_config(config)


def test_method_training_overrides_global_settings():
    config = default_config()
    config["methods"]["joint"]["training"] = {"epochs": 7}
    merged = training_settings(config, "joint")
    assert merged["epochs"] == 7
    assert merged["batch_size"] == config["training"]["batch_size"]
    assert config["training"]["epochs"] == 3  # the global settings are not modified


def test_a_broken_config_stops_snakemake_before_any_job(tmp_path):
    config = default_config()
    config["tasks"]["bbc-headlines"]["max_length"] = "long"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--cores",
            "1",
            "-s",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--configfile",
            str(bad),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=120,
    )
    assert result.returncode != 0
    assert "tasks.bbc-headlines.max_length: 'long' is not of type 'integer'" in result.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "results").exists()
