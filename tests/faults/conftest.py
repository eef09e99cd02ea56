"""One tiny trained run and every artifact the workflow derives from it, laid out as the
workflow writes them; each fault test breaks a copy."""

import shutil

import pandas as pd
import pytest
from tiny import make_tiny_bert, prepare_tiny_task, tiny_training

from early_exit.analysis.latency import COLUMNS as LATENCY_COLUMNS
from early_exit.exits.operating_points import write_operating_points
from early_exit.inference.predict import predict
from early_exit.runners.finetune import finetune
from early_exit.runners.spec import RunSpec
from early_exit.support.tables import write_table
from faults import RUN, RUN_KEY, SEED, TASK, splitee_job, sweep_job


@pytest.fixture(scope="session")
def workspace(tmp_path_factory):
    """A results tree: model, stored and transfer outputs, calibration, sweep, operating
    points, SplitEE tables and a latency table (hand-made: timing is not what is tested)."""
    root = tmp_path_factory.mktemp("faults")
    data = prepare_tiny_task(root, (("train", 60, 0), ("dev", 24, 1), ("test", 24, 2)), 12)
    bert = make_tiny_bert(root / "bert", num_layers=2)
    backbone = {"name": str(bert), "pooling": "mean"}
    method = {"recipe": "joint", "exit_layers": "all"}
    training = tiny_training(epochs=1, learning_rate=1e-2, checkpoint_every=1000)
    run = root / RUN
    finetune(
        RunSpec(data, run / "model", backbone, method, training, SEED, "cpu", 1, run / "state")
    )
    shutil.rmtree(run / "state", ignore_errors=True)
    predict(run / "model", data, run / "exit_logits.npz", device="cpu", threads=1)
    predict(
        run / "model",
        data,
        run / "transfer" / TASK / "exit_logits.npz",
        splits=["test"],
        device="cpu",
        threads=1,
    )
    sweep_job(root)
    write_operating_points(
        [run / "sweep.tsv"], 0.05, root / "results/analysis/operating_points.tsv"
    )
    splitee_job(root)
    latency = pd.DataFrame([{c: 1.0 for c in LATENCY_COLUMNS if c not in RUN_KEY}])
    latency["engine"], latency["policy"] = "torch", "entropy"
    write_table(latency, run / "latency.tsv", dict(RUN_KEY))
    return root


@pytest.fixture
def results(workspace, tmp_path, monkeypatch):
    """A fresh copy of the workspace, the working directory (the workflow's layout is
    relative to it, as results/analysis/operating_points.tsv is found from a run)."""
    shutil.copytree(workspace, tmp_path / "w", symlinks=True)
    monkeypatch.chdir(tmp_path / "w")
    return tmp_path / "w"
