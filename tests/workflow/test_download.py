"""Download step: hub models/datasets into `hub_cache`, and the paper config's DAG, offline."""

import shutil
from pathlib import Path

import datasets
import pytest
import yaml
from snakemake.utils import validate
from tiny import make_tiny_bert
from workflow_cli import run_workflow

from early_exit.config.hub import cached_task, hub_datasets, hub_models
from early_exit.modeling.backbone import load_pretrained
from early_exit.modeling.backbone_source import cached_backbone
from early_exit.support.download import download_dataset, download_model
from early_exit.support.errors import DataError

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def hub_cache_with(repo_id: str, files_from: Path, cache: Path) -> Path:
    """A Hugging Face cache laid out as `huggingface_hub` writes it (refs + snapshots)."""
    root = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = root / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(files_from, snapshot)
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(snapshot.name)
    return cache


def test_model_download_copies_a_cached_repository_and_it_loads(tmp_path):
    cache = hub_cache_with("test-org/tiny-bert", make_tiny_bert(tmp_path / "bert"), tmp_path / "hf")
    out = download_model(
        "test-org/tiny-bert", tmp_path / "hub/models/test-org--tiny-bert", hf_cache=str(cache)
    )
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    encoder, tokenizer = load_pretrained(str(out))
    assert encoder.config.num_hidden_layers == 3 and tokenizer("the market")["input_ids"]


def test_model_download_without_network_says_what_to_do(tmp_path):
    with pytest.raises(
        DataError, match="cannot download model 'no-such/model'.*machine with internet"
    ):
        download_model("no-such/model", tmp_path / "out", hf_cache=str(tmp_path / "empty"))
    assert not (tmp_path / "out").exists()


def test_dataset_download_saves_every_split_from_a_hub_like_directory(tmp_path, hub_dataset):
    repo = hub_dataset(
        {
            "train": {"text": ["a b", "c d", "e f"], "label": [0, 1, 0]},
            "validation": {"text": ["g h"], "label": [1]},
        },
        name="repo",
    )
    out = download_dataset(str(repo), None, tmp_path / "hub/datasets/repo")
    saved = datasets.load_from_disk(str(out))
    original = datasets.load_dataset(str(repo))
    assert set(saved) == set(original)
    for split in saved:
        assert saved[split].to_list() == original[split].to_list()


def paper_config():
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    validate(config, str(SCHEMA))
    return config


def test_paper_config_maps_every_hub_id_to_the_cache():
    config = paper_config()
    assert set(hub_models(config)) == {
        "bert-base-uncased",
        "FacebookAI--roberta-base",
        "albert--albert-base-v2",
        "fnlp--elasticbert-base",
    }
    assert "nyu-mll--glue--mnli" in hub_datasets(config)
    backbone = cached_backbone(config, {"name": "fnlp/elasticbert-base", "format": "elasticbert"})
    assert backbone["name"] == "data/hub/models/fnlp--elasticbert-base"
    assert (
        cached_task(config, "snli")["source"]["local_copy"] == "data/hub/datasets/stanfordnlp--snli"
    )
    assert cached_backbone({**config, "hub_cache": None}, config["backbone"]) == config["backbone"]


def snakemake(workdir, *args):
    return run_workflow(workdir, REPO / "config/paper.yaml", *args)


def test_paper_config_dag_builds_offline_and_reads_only_the_cache(tmp_path):
    result = snakemake(tmp_path, "--dry-run", "results/mnli/elasticbert/seed42/sweep.tsv")
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "download_model" in out and "download_dataset" in out
    assert "data/hub/models/fnlp--elasticbert-base" in out
    assert "data/hub/datasets/nyu-mll--glue--mnli" in out


def test_paper_run_without_the_download_fails_first_and_says_what_to_do(tmp_path):
    result = snakemake(tmp_path, "results/rte/pabee-bert/seed42/model")
    assert result.returncode != 0
    log = "".join(p.read_text() for p in (tmp_path / "results/logs/download").glob("*.log"))
    assert "machine with internet" in log + result.stderr
    assert not (tmp_path / "results/rte").exists()  # nothing past the downloads ran
