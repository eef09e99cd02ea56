"""Fault injection on the artifacts a trained run leaves: each one truncated, replaced by
garbage or deleted, read by the command or stage that reads it, gives one line naming
the file and what rewrites it, exit status 2, and no traceback."""

from __future__ import annotations

import io
import shutil
import sys

import pytest

from early_exit.cli import main
from early_exit.exits.sweep import sweep_file
from early_exit.support.errors import DataError
from early_exit.support.joblog import USER_ERROR, job_log

FAULTS = {
    "truncated": lambda path: path.write_bytes(
        path.read_bytes()[: max(1, path.stat().st_size // 3)]
    ),
    "garbage": lambda path: path.write_bytes(b"\x00\xffnot what it should be" * 8),
    "deleted": lambda path: path.unlink(),
}
MODEL_FILES = {
    "model/model.safetensors": ("model.safetensors", "rule train"),
    "model/exit_config.json": ("exit_config.json", "rule train"),
    "model/config.json": ("config.json", "rule train"),
}


def broken_copy(run, tmp_path, relative, fault):
    copy = tmp_path / "results" / "cls" / "broken" / "seed0"
    shutil.copytree(run, copy)
    FAULTS[fault](copy / relative)
    return copy


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("relative", MODEL_FILES)
def test_predict_on_a_broken_model_is_one_line_and_status_2(
    runs, tmp_path, capsys, monkeypatch, relative, fault
):
    run = broken_copy(runs["joint"][0], tmp_path, relative, fault)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"market shares\n")))
    code = main(["predict", str(run), "--threshold", "0.5"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    name, rewrites = MODEL_FILES[relative]
    # a deleted weights or exit config file makes the directory not a model at all
    assert name in err or "not a trained" in err
    assert rewrites in err or "not a trained" in err


@pytest.mark.parametrize("fault", FAULTS)
def test_a_broken_stored_outputs_file_stops_the_sweep_job_with_one_line(
    runs, tmp_path, capsys, fault
):
    run = broken_copy(runs["joint"][0], tmp_path, "exit_logits.npz", fault)
    log = tmp_path / "sweep.log"
    out = run / "sweep.tsv"
    with pytest.raises(SystemExit) as stop, job_log(log):
        sweep_file(run / "exit_logits.npz", out, {"entropy": {}}, None, {"task": "cls"})
    assert stop.value.code == USER_ERROR == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "exit_logits.npz" in err
    assert "rule train" in err and "Traceback" not in log.read_text()
    assert not out.exists()  # no partial table where a complete one is expected


def test_a_broken_calibration_names_the_rule_that_writes_it(runs, tmp_path):
    run = broken_copy(runs["joint"][0], tmp_path, "calibration.json", "garbage")
    with pytest.raises(DataError, match=r"calibration.json: cannot read temperatures.*rule sweep"):
        sweep_file(
            run / "exit_logits.npz",
            run / "s.tsv",
            {"confidence": {}},
            None,
            {},
            run / "calibration.json",
        )
