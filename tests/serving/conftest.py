"""Tiny trained runs for the serving tests: a pooler model (joint) and a layer-mix one
(Sledgehammer, whose per-layer mix states must travel with merged cohorts)."""

import json

import pytest
from live_server import serving
from tiny import RUN_TRAINING, make_examples, make_tiny_bert

from early_exit.data.prepare import prepare_task
from early_exit.exits.calibration import calibrate_file
from early_exit.inference.predict import predict
from early_exit.runners.finetune import finetune
from early_exit.runners.spec import RunSpec

TRAINING = RUN_TRAINING
RUNS = {
    "joint": {"recipe": "joint", "exit_layers": "all"},
    "sledgehammer": {"recipe": "sledgehammer", "exit_layers": [1, 2, 4]},
}


@pytest.fixture(scope="session")
def serving_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    files = {}
    for split, n, seed in (("train", 90, 0), ("dev", 40, 1), ("test", 40, 2)):
        files[split] = root / f"cls-{split}.jsonl"
        files[split].write_text("".join(json.dumps(e) + "\n" for e in make_examples(n, seed=seed)))
    spec = {"source": {"type": "files", "format": "jsonl", **{k: str(v) for k, v in files.items()}}}
    data = root / "data" / "cls"
    prepare_task("cls", spec | {"max_length": 12, "type": "classification"}, data, seed=0)
    backbone = {"name": str(make_tiny_bert(root / "bert", num_layers=4)), "pooling": "mean"}
    out = {}
    for name, method in RUNS.items():
        run = root / "results" / "cls" / name / "seed0"
        finetune(
            RunSpec(data, run / "model", backbone, method, TRAINING, 0, "cpu", 1, run / "state")
        )
        predict(run / "model", data, run / "exit_logits.npz", device="cpu", threads=1)
        calibrate_file(run / "exit_logits.npz", run / "calibration.json")
        out[name] = run
    texts = [json.loads(line)["text"] for line in files["test"].read_text().splitlines()]
    return out, texts


@pytest.fixture(scope="module")
def engine_url(serving_runs):
    """A refilling server of the Sledgehammer run on 127.0.0.1, and the test texts."""
    from early_exit.inference.engine import EarlyExitEngine

    runs, texts = serving_runs
    engine = EarlyExitEngine.from_run(runs["sledgehammer"], device="cpu")
    with serving(engine) as (url, _):
        yield url, texts
