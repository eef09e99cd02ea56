"""Small trained runs laid out as the workflow writes them, shared by the inference tests."""

import json

import numpy as np
import pytest
from tiny import RUN_TRAINING, make_examples, make_tiny_bert

from early_exit.data.prepare import prepare_task
from early_exit.exits.calibration import calibrate_file
from early_exit.inference.predict import predict
from early_exit.runners.finetune import finetune
from early_exit.runners.spec import RunSpec

TRAINING = RUN_TRAINING
RUNS = {  # name: (task, method)
    "joint": ("cls", {"recipe": "joint", "exit_layers": "all"}),
    "pabee": ("cls", {"recipe": "pabee", "exit_layers": "all"}),
    "sledgehammer": ("cls", {"recipe": "sledgehammer", "exit_layers": [1, 2, 4]}),
    "pabee-regression": ("reg", {"recipe": "pabee", "exit_layers": "all"}),
    "berxit": ("cls", {"recipe": "berxit", "exit_layers": "all"}),
}


def write_task(root, name, regression):
    files = {}
    for split, n, seed in (("train", 90, 0), ("dev", 40, 1), ("test", 40, 2)):
        examples = make_examples(n, seed=seed)
        if regression:  # a score that grows with the class, plus a little noise
            rng = np.random.default_rng(seed)
            for ex in examples:
                ex["label"] = round(float(ex["label"] + rng.normal(0, 0.2)), 3)
        files[split] = root / f"{name}-{split}.jsonl"
        files[split].write_text("".join(json.dumps(ex) + "\n" for ex in examples))
    spec = {"source": {"type": "files", "format": "jsonl", **{k: str(v) for k, v in files.items()}}}
    spec |= {"max_length": 12, "type": "regression" if regression else "classification"}
    prepare_task(name, spec, root / "data" / name, seed=0)
    return root / "data" / name


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """Run directories laid out as the workflow's (model, exit_logits.npz, calibration.json)."""
    root = tmp_path_factory.mktemp("engine")
    backbone = {"name": str(make_tiny_bert(root / "bert", num_layers=4)), "pooling": "mean"}
    data = {"cls": write_task(root, "cls", False), "reg": write_task(root, "reg", True)}
    out = {}
    for name, (task, method) in RUNS.items():
        run = root / "results" / task / name / "seed0"
        spec = RunSpec(
            data[task], run / "model", backbone, method, TRAINING, 0, "cpu", 1, run / "state"
        )
        finetune(spec)
        predict(run / "model", data[task], run / "exit_logits.npz", device="cpu", threads=1)
        calibrate_file(run / "exit_logits.npz", run / "calibration.json")
        out[name] = (run, data[task])
    return out
