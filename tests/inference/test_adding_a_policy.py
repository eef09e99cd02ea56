"""The engine and `early-exit predict` run a toy policy (tests/helpers/toy_policy.py) that
only its module and the registry know, with its own option."""

import io
import json
import sys

import numpy as np
import pytest
import toy_policy

from early_exit.cli import main
from early_exit.data.prepared import load_split
from early_exit.exits.policies import Outputs, get_policy
from early_exit.exits.stored import load_exit_logits
from early_exit.inference.engine import EarlyExitEngine
from early_exit.training.batching import encode

TOL = 1e-5


@pytest.fixture
def toy():
    with toy_policy.registered() as policy:
        yield policy


def test_the_engine_exits_a_toy_policy_where_its_sweep_says(runs, toy):
    run, data_dir = runs["joint"]
    engine = EarlyExitEngine.from_run(run, device="cpu")
    stored = load_exit_logits(run / "exit_logits.npz")
    out = Outputs(stored["dev_logits"], stored["dev_labels"])
    grid, sweep_exits = get_policy("margin").decide(out, {"num_thresholds": 9, "scale": 0.5})
    features = encode(load_split(data_dir, "dev"), engine.tokenizer, engine.max_length).features
    early = 0
    for k, m in enumerate(grid):
        got = engine.run(features, engine.policy("margin", m, scale=0.5), batch_size=8)
        assert got.exit_index.shape == sweep_exits[k].shape
        near = (np.abs(toy_policy.margins(out.logits, 0.5) - m) < TOL).any(1)
        assert not ((got.exit_index != sweep_exits[k]) & ~near).any()
        early += int((got.exit_index < out.n_exits - 1).sum())
    assert early > 0


def test_predict_takes_a_toy_policys_option_and_refuses_another_policys(
    runs, toy, capsys, monkeypatch
):
    run = runs["joint"][0]
    argv = ["predict", str(run), "--policy", "margin", "--threshold", "0.2", "--scale", "0.5"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"market shares bank\n")))
    assert main(argv) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["score_name"] == "margin"
    argv = ["predict", str(run), "--policy", "entropy", "--threshold", "0.2", "--scale", "0.5"]
    assert main(argv) == 2
    assert "policy entropy: no option scale (its options: none)" in capsys.readouterr().err
