"""Fault injection: every artifact one stage writes and another stage (or the CLI) reads,
truncated, replaced by garbage, deleted or changed after it was written, read by that
stage as its workflow script calls it (inside `job_log`) or by the command: one line naming
the file, what is wrong and the rule that rewrites it; exit status 2; no traceback; and no
partial output where the stage's complete one is expected."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pytest

from early_exit.analysis.bootstrap import Settings
from early_exit.analysis.latency import load_latency
from early_exit.analysis.measured import COLUMNS as MEASURED_COLUMNS
from early_exit.analysis.measured import load_measured
from early_exit.analysis.operating_point_tables import write_uncertainty
from early_exit.analysis.splitee_results import load_tables
from early_exit.cli import main
from early_exit.inference.latency import time_runs
from early_exit.support.errors import DataError
from early_exit.support.joblog import USER_ERROR, job_log
from faults import (
    FAULTS,
    POLICIES,
    RUN,
    RUN_KEY,
    SPLITEE_DIR,
    changed_npz,
    flip_a_byte,
    splitee_job,
    sweep_job,
)

POINTS = "results/analysis/operating_points.tsv"
WITH_CHANGE = {**FAULTS, "changed": flip_a_byte}


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def predict_cli(capsys, monkeypatch, run, *options) -> tuple[int, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"market shares\n")))
    code = main(["predict", str(run), *options])
    out, err = capsys.readouterr()
    return code, out, err


def job(capsys, log, stage, *outputs):
    """Run `stage` as a workflow script does; the one-line error it ends with. Outputs are
    removed first (Snakemake does so before a job) and must not exist after it."""
    for path in outputs:
        path.unlink(missing_ok=True)
    with pytest.raises(SystemExit) as stop, job_log(log):
        stage()
    assert stop.value.code == USER_ERROR == 2
    line = one_line(capsys.readouterr().err)
    assert "Traceback" not in log.read_text()
    assert not [p for p in outputs if p.exists()]  # no partial output
    assert not [p for o in outputs for p in o.parent.glob(f".{o.name}.*")]  # nor a temporary
    return line


# ---------------------------------------------------------------- model directories
MODEL_FILES = ["model.safetensors", "exit_config.json", "config.json", "tokenizer_config.json"]


@pytest.mark.parametrize("fault", WITH_CHANGE)
@pytest.mark.parametrize("name", MODEL_FILES)
def test_a_broken_model_file_stops_predict(results, capsys, monkeypatch, name, fault):
    WITH_CHANGE[fault](results / RUN / "model" / name)
    code, out, err = predict_cli(capsys, monkeypatch, results / RUN, "--threshold", "0.5")
    line = one_line(err)
    assert code == 2 and out == ""
    assert name in line or "not a trained" in line
    assert "rule train" in line or "not a trained" in line
    if fault == "changed":
        assert "checksum differs" in line and "truncated or changed after it was written" in line


@pytest.mark.parametrize("fault", ["truncated", "garbage"])
def test_a_broken_checksum_list_stops_predict(results, capsys, monkeypatch, fault):
    FAULTS[fault](results / RUN / "model" / "checksums.json")
    code, _, err = predict_cli(capsys, monkeypatch, results / RUN, "--threshold", "0.5")
    line = one_line(err)
    assert code == 2 and "checksums.json" in line and "rule train" in line


def test_a_model_without_checksums_is_read_with_its_structure_checks(results, capsys, monkeypatch):
    """A model directory written before checksums were recorded still loads."""
    (results / RUN / "model" / "checksums.json").unlink()
    code, out, _ = predict_cli(capsys, monkeypatch, results / RUN, "--threshold", "0.5")
    assert code == 0 and json.loads(out)["label_name"]


# ---------------------------------------------------------------- stored outputs
STORED_FAULTS = {**FAULTS, "changed": changed_npz}


@pytest.mark.parametrize("fault", STORED_FAULTS)
def test_broken_stored_outputs_stop_the_sweep_job(results, capsys, fault):
    STORED_FAULTS[fault](results / RUN / "exit_logits.npz")
    run = results / RUN
    line = job(
        capsys,
        results / "sweep.log",
        lambda: sweep_job(results),
        run / "calibration.json",
        run / "sweep.tsv",
    )
    assert "exit_logits.npz" in line and "rule train" in line
    if fault == "changed":
        assert "checksum differs" in line


@pytest.mark.parametrize("fault", STORED_FAULTS)
def test_broken_transfer_outputs_stop_the_splitee_job(results, capsys, fault):
    STORED_FAULTS[fault](results / RUN / "transfer" / "tiny" / "exit_logits.npz")
    out = results / SPLITEE_DIR
    line = job(
        capsys,
        results / "splitee.log",
        lambda: splitee_job(results),
        out / "splitee.tsv",
        out / "regret.tsv",
    )
    assert "transfer/tiny/exit_logits.npz" in line and "rule predict_transfer" in line


# ---------------------------------------------------------------- calibration
def wrong_temperatures(path):
    report = json.loads(path.read_text())
    report["temperatures"] = [-1.0] * len(report["temperatures"])
    path.write_text(json.dumps(report))


CALIBRATION_FAULTS = {**FAULTS, "changed": wrong_temperatures}


def operating_points_job(results):
    """What workflow/scripts/operating_points.py does."""
    outputs = {n: results / f"results/analysis/{n}.tsv" for n in ("summary", "elue")}
    outputs["points"] = results / POINTS
    outputs["significance"] = results / "results/analysis/significance.tsv"
    stage = lambda: write_uncertainty(  # noqa: E731
        [results / RUN / "sweep.tsv"],
        {"tiny": POLICIES},
        Settings(resamples=10),
        0.05,
        {"joint": {"criterion": "entropy", "role": "dynamic"}},
        outputs,
    )
    return stage, list(outputs.values())


@pytest.mark.parametrize("fault", CALIBRATION_FAULTS)
def test_a_broken_calibration_stops_the_operating_points_job(results, capsys, fault):
    CALIBRATION_FAULTS[fault](results / RUN / "calibration.json")
    stage, outputs = operating_points_job(results)
    line = job(capsys, results / "points.log", stage, *outputs)
    assert "calibration.json" in line and "rule sweep" in line


@pytest.mark.parametrize("fault", ["truncated", "garbage", "changed"])
def test_a_broken_calibration_stops_predict(results, capsys, monkeypatch, fault):
    CALIBRATION_FAULTS[fault](results / RUN / "calibration.json")
    code, _, err = predict_cli(capsys, monkeypatch, results / RUN, "--threshold", "0.5")
    line = one_line(err)
    assert code == 2 and "calibration.json" in line and "rule sweep" in line


# ---------------------------------------------------------------- tables
def without_a_column(path):
    """A well-formed table that lacks a column its reader needs (an older writer)."""
    lines = path.read_text().splitlines(keepends=True)
    cells = [line.rstrip("\n").split("\t") for line in lines]
    drop = 1 if cells[0][0] == "task" else 0  # the run key's second column, or the first
    drop = cells[0].index("policy") if "policy" in cells[0] else drop
    path.write_text("".join("\t".join(c[:drop] + c[drop + 1 :]) + "\n" for c in cells))


def header_only(path):
    path.write_text(path.read_text().splitlines()[0] + "\n")


TABLE_FAULTS = {**FAULTS, "no column": without_a_column, "no rows": header_only}


def assert_names(line, path, rule):
    assert str(path) in line or path.name in line
    assert re.search(rf"\b{rule}\b", line), line


@pytest.mark.parametrize("fault", TABLE_FAULTS)
def test_a_broken_sweep_table_stops_the_operating_points_job(results, capsys, fault):
    TABLE_FAULTS[fault](results / RUN / "sweep.tsv")
    stage, outputs = operating_points_job(results)
    line = job(capsys, results / "points.log", stage, *outputs)
    assert_names(line, results / RUN / "sweep.tsv", "rule sweep")


def latency_job(results):
    runs = [
        {
            "run_dir": str(results / RUN),
            "data_dir": str(results / "data"),
            "policy": "entropy",
            "run_key": {k: str(v) for k, v in RUN_KEY.items()},
            "options": {},
        }
    ]
    out = results / RUN / "latency.tsv"
    return lambda: time_runs(runs, [out], results / POINTS, device="cpu", threads=1), out


@pytest.mark.parametrize("fault", TABLE_FAULTS)
def test_broken_operating_points_stop_the_latency_job(results, capsys, fault):
    TABLE_FAULTS[fault](results / POINTS)
    stage, out = latency_job(results)
    line = job(capsys, results / "latency.log", stage, out)
    assert_names(line, results / POINTS, "rule operating_points")


@pytest.mark.parametrize("fault", [f for f in TABLE_FAULTS if f != "deleted"])
def test_broken_operating_points_stop_predict_threshold_auto(results, capsys, monkeypatch, fault):
    TABLE_FAULTS[fault](results / POINTS)
    code, _, err = predict_cli(capsys, monkeypatch, results / RUN, "--threshold", "auto")
    line = one_line(err)
    assert code == 2
    assert_names(line, results / POINTS, "rule operating_points")


@pytest.mark.parametrize("fault", TABLE_FAULTS)
def test_a_broken_sweep_table_stops_the_latency_job(results, capsys, fault):
    TABLE_FAULTS[fault](results / RUN / "sweep.tsv")
    stage, out = latency_job(results)
    line = job(capsys, results / "latency.log", stage, out)
    assert_names(line, results / RUN / "sweep.tsv", "rule sweep")


@pytest.mark.parametrize("fault", TABLE_FAULTS)
def test_a_broken_latency_table_stops_the_latency_notebook(results, fault):
    path = results / RUN / "latency.tsv"
    TABLE_FAULTS[fault](path)
    with pytest.raises(DataError) as err:
        load_latency([path])
    assert_names(one_line(str(err.value)), path, "rule latency")


@pytest.mark.parametrize("fault", TABLE_FAULTS)
def test_a_broken_measured_speedup_table_stops_its_readers(tmp_path, fault):
    """measured_speedup.tsv (rule latency): read by the tradeoff and latency notebooks and
    rule deck_slides, through one reader."""
    path = tmp_path / "measured_speedup.tsv"
    columns = ("task", "policy", *(c for c in MEASURED_COLUMNS if c not in ("task", "policy")))
    path.write_text("\t".join(columns) + "\n" + "\t".join("1" for _ in columns) + "\n")
    load_measured(path)  # the intact table reads
    TABLE_FAULTS[fault](path)
    with pytest.raises(DataError) as err:
        load_measured(path)
    assert_names(one_line(str(err.value)), path, "rule latency")


@pytest.mark.parametrize("name", ["splitee.tsv", "regret.tsv"])
@pytest.mark.parametrize("fault", TABLE_FAULTS)
def test_a_broken_splitee_table_stops_the_splitee_notebook(results, name, fault):
    path = results / SPLITEE_DIR / name
    TABLE_FAULTS[fault](path)
    with pytest.raises(DataError) as err:
        load_tables([str(path)])
    assert_names(one_line(str(err.value)), path, "rule splitee")


# ---------------------------------------------------------------- ElasticBERT backbones
@pytest.fixture
def elastic_backbone(workspace, tmp_path):
    """What rule elastic_pretrain writes (a random encoder with a pooler per layer)."""
    from torch import nn
    from transformers import BertModel, BertTokenizer

    from early_exit.modeling.elasticbert_io import save_elastic_backbone

    encoder = BertModel.from_pretrained(workspace / "bert", add_pooling_layer=False)
    tokenizer = BertTokenizer.from_pretrained(workspace / "bert")
    hidden = encoder.config.hidden_size
    poolers = {i + 1: nn.Linear(hidden, hidden) for i in range(encoder.config.num_hidden_layers)}
    save_elastic_backbone(tmp_path / "elastic_backbone", encoder, poolers, tokenizer)
    return tmp_path / "elastic_backbone"


@pytest.mark.parametrize("fault", WITH_CHANGE)
@pytest.mark.parametrize("name", ["model.safetensors", "config.json", "tokenizer_config.json"])
def test_a_broken_elastic_backbone_stops_the_job_that_reads_it(
    elastic_backbone, capsys, tmp_path, name, fault
):
    from early_exit.modeling.elasticbert_io import load_elastic_backbone

    WITH_CHANGE[fault](elastic_backbone / name)
    line = job(capsys, tmp_path / "train.log", lambda: load_elastic_backbone(str(elastic_backbone)))
    assert name in line or "no config.json" in line
    assert "rule elastic_pretrain" in line or "no config.json" in line


def test_an_elastic_backbone_without_checksums_loads(elastic_backbone):
    """A hub copy (rule download_model) or one written before checksums were recorded."""
    from early_exit.modeling.elasticbert_io import load_elastic_backbone

    (elastic_backbone / "checksums.json").unlink()
    encoder, _, poolers = load_elastic_backbone(str(elastic_backbone))
    assert len(poolers) == encoder.config.num_hidden_layers


# ---------------------------------------------------------------- early-exit export
@pytest.mark.parametrize(
    ("relative", "fault", "rule"),
    [
        (POINTS, "garbage", "rule operating_points"),
        (f"{RUN}/latency.tsv", "truncated", "rule latency"),
        (f"{RUN}/sweep.tsv", "no column", "rule sweep"),
        (f"{RUN}/model/model.safetensors", "changed", "rule train"),
    ],
)
def test_a_broken_artifact_stops_the_export(results, capsys, relative, fault, rule):
    pytest.importorskip("onnxruntime")
    {**TABLE_FAULTS, **WITH_CHANGE}[fault](results / relative)
    out = results / "exported"
    code = main(["export", str(results / RUN), str(out)])
    line = one_line(capsys.readouterr().err)
    assert code == 2 and Path(relative).name in line and rule in line
    assert not out.exists() and not list(results.glob(".exported*"))  # no partial export


# ---------------------------------------------------------------- the deck's setup slides
@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("name", ["exit_config.json", "config.json"])
def test_a_broken_model_json_stops_the_deck_slides_job(results, capsys, name, fault):
    """Rule deck_slides reads each model's JSON without torch (no checksum check)."""
    from early_exit.slides.run_tables import Model

    FAULTS[fault](results / RUN / "model" / name)
    if fault == "deleted" and name == "config.json":  # optional: the backbone's details
        assert Model.read(results / RUN / "model").backbone_config == {}
        return
    line = job(capsys, results / "deck.log", lambda: Model.read(results / RUN / "model"))
    assert name in line and "rule train" in line
