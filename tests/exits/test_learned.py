"""The learned exit at runtime (engine interface) agrees with the sweep over stored scores,
on a real gated model: scores stored by the predict pass, and exits chosen row by row."""

import json

import numpy as np
import pytest
import torch
from tiny import make_tiny_bert, prepare_tiny_task, tiny_training

from early_exit.exits.policies import Outputs, runtime_policy
from early_exit.exits.policies.learned import exits as learned_exits
from early_exit.exits.stored import load_exit_logits, stored_scores
from early_exit.inference.predict import predict
from early_exit.modeling.checkpoint import load_model_dir
from early_exit.runners.finetune import finetune
from early_exit.runners.spec import RunSpec
from early_exit.support.errors import ConfigError
from early_exit.training.batching import Collator, encode

TRAINING = tiny_training(epochs=2, learning_rate=1e-2)


def engine_loop(runtime, scores_per_exit, logits_per_exit):
    """What the engine does: ask exit by exit, drop the rows that left."""
    n, n_exits = scores_per_exit.shape
    running = np.arange(n)
    chosen = np.full(n, n_exits - 1)
    state = runtime.start(n)
    for i in range(n_exits - 1):
        fires = runtime.fires(i, logits_per_exit[running, i], scores_per_exit[running, i], state)
        chosen[running[fires]] = i
        running = running[~fires]
        state = runtime.keep(state, ~fires)
        assert len(state["score"]) == len(running)
    return chosen


def test_runtime_rule_agrees_with_the_vectorised_policy_on_random_scores():
    rng = np.random.default_rng(0)
    scores = rng.uniform(size=(200, 5))
    logits = rng.normal(size=(200, 5, 3))
    out = Outputs(logits, rng.integers(0, 3, 200), scores=scores)
    for tau in (0.0, 0.1, 0.35, 0.8, 1.01):
        expected = learned_exits(out, np.array([tau]))[0]
        got = engine_loop(runtime_policy("learned", tau), scores, logits)
        np.testing.assert_array_equal(got, expected)


def test_runtime_without_gate_scores_is_a_clear_error():
    with pytest.raises(ConfigError, match="no exit gate"):
        rule = runtime_policy("learned", 0.5)
        rule.fires(0, np.zeros((2, 3)), None, rule.start(2))


@pytest.fixture(scope="module")
def gated_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("berxit")
    backbone = {"name": str(make_tiny_bert(root / "bert")), "pooling": "mean"}
    prepare_tiny_task(root, (("train", 48, 0), ("dev", 20, 1), ("test", 20, 2)))
    method = {"recipe": "berxit", "exit_layers": "all"}
    finetune(
        RunSpec(
            root / "data", root / "model", backbone, method, TRAINING, 0, "cpu",
            state_dir=root / "state",
        )
    )  # fmt: skip
    predict(root / "model", root / "data", root / "exit_logits.npz", batch_size=7, device="cpu")
    return root


def test_predict_stores_the_gate_scores_and_the_engine_rule_matches_the_sweep(gated_run):
    stored = load_exit_logits(gated_run / "exit_logits.npz")
    scores = stored_scores(stored, "dev")
    assert scores.shape == (20, 3) and ((scores > 0) & (scores < 1)).all()
    model, tokenizer, meta = load_model_dir(gated_run / "model")
    model.eval()
    dev = [json.loads(line) for line in (gated_run / "data" / "dev.jsonl").read_text().splitlines()]
    data = encode(dev, tokenizer, meta["max_length"])
    with torch.no_grad():  # one example at a time, as a batch-1 engine would see it
        rows = [
            model(
                **{
                    k: v
                    for k, v in Collator(tokenizer, data)(np.array([i])).items()
                    if k != "labels"
                }
            )
            for i in range(20)
        ]
    live_scores = torch.cat([r.exit_scores for r in rows]).numpy()
    live_logits = torch.cat([r.logits for r in rows]).numpy()
    np.testing.assert_allclose(live_scores, scores, atol=1e-5)
    out = Outputs(stored["dev_logits"], stored["dev_labels"], scores=scores)
    for tau in np.quantile(scores, [0.1, 0.5, 0.9]):
        expected = learned_exits(out, np.array([tau]))[0]
        got = engine_loop(runtime_policy("learned", tau), live_scores, live_logits)
        np.testing.assert_array_equal(got, expected)


def test_cross_task_prediction_stores_labels_as_model_label_indices(gated_run, tmp_path):
    names = load_exit_logits(gated_run / "exit_logits.npz")["label_names"].tolist()
    swap = {names[0]: names[1], names[1]: names[0]}  # a target naming two labels the other way
    out = tmp_path / "transfer.npz"
    predict(gated_run / "model", gated_run / "data", out, ["test"], 7, "cpu", None, swap, "k")
    plain = load_exit_logits(gated_run / "exit_logits.npz")
    moved = load_exit_logits(out)
    assert moved["splits"].tolist() == ["test"] and "dev_logits" not in moved
    np.testing.assert_array_equal(moved["test_logits"], plain["test_logits"])
    expected = np.array([1, 0, *range(2, len(names))])[plain["test_labels"]]
    np.testing.assert_array_equal(moved["test_labels"], expected)


def test_the_gate_grid_can_hold_berxits_released_knob():
    from early_exit.exits.policies import get_policy
    from early_exit.exits.policies.learned import RELEASED_KNOB

    out = Outputs(np.zeros((2, 3, 2)), np.zeros(2), scores=np.zeros((2, 3)))
    policy = get_policy("learned")
    uniform = policy.grid(out, {"num_thresholds": 41})
    assert RELEASED_KNOB not in uniform and len(uniform) == 41  # the default grid unchanged
    grid = policy.grid(out, {"num_thresholds": 41, "include": [0.005, 0.001, 1.0]})
    assert RELEASED_KNOB in grid and len(grid) == 43  # 1.0 is on the grid already
    assert (np.diff(grid) > 0).all()


def test_the_paper_config_sweeps_learned_on_stsb_with_the_released_knob():
    from pathlib import Path

    import yaml

    from early_exit.exits.policies.learned import RELEASED_KNOB

    paper = yaml.safe_load((Path(__file__).parents[2] / "config" / "paper.yaml").read_text())
    assert "learned" in paper["tasks"]["stsb"]["policies"]
    assert RELEASED_KNOB in paper["sweep"]["policies"]["learned"]["include"]
