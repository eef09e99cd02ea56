"""The engine exits for real exactly where the sweep, from stored logits, says it would.

Small models are trained on a tiny task, run once through the predict stage (stored
logits) and once through the engine, per policy and knob value, at batch size 1 and
32. Floating-point results differ slightly between batch shapes, so an example whose
deciding score lies within TOL of the knob (or whose top two logits are within TOL,
for argmax decisions) may differ: those are counted and printed; every other example
must match exactly (tests/helpers/exactness.py, shared with the ONNX Runtime engine's
test).
"""

import numpy as np
import pytest
import torch
from exactness import Comparison, compare_with_sweep

from early_exit.data.prepared import load_split
from early_exit.exits.policies import Outputs, get_policy, runtime_policy
from early_exit.exits.policies.entropy import entropy
from early_exit.exits.stored import load_exit_logits
from early_exit.inference.engine import EarlyExitEngine
from early_exit.support.errors import ConfigError
from early_exit.training.batching import encode


@pytest.mark.parametrize("batch_size", [1, 32])
@pytest.mark.parametrize(
    "name,policy",
    [
        ("joint", "entropy"),
        ("joint", "confidence"),
        ("joint", "patience"),
        ("pabee", "patience"),
        ("pabee", "entropy"),
        ("sledgehammer", "confidence"),
        ("sledgehammer", "entropy"),
        ("pabee-regression", "patience"),
        ("berxit", "learned"),
        ("berxit", "entropy"),
    ],
)
def test_engine_exits_where_the_sweep_says(runs, name, policy, batch_size):
    run, data_dir = runs[name]
    engine = EarlyExitEngine.from_run(run, device="cpu")
    total = Comparison()
    for split in ("dev", "test"):
        total += compare_with_sweep(engine, run, data_dir, split, policy, batch_size)
    print(
        f"{name} {policy} batch {batch_size}: {total.decisions} decisions, "
        f"{total.tolerated} near-knob differences tolerated"
    )
    # exemptions at most 1% of the decisions; early exits as the sweep says, knob by knob
    total.check(f"{name} {policy} batch {batch_size}")


def test_full_depth_reproduces_the_stored_last_exit(runs):
    run, data_dir = runs["sledgehammer"]
    engine = EarlyExitEngine.from_run(run, device="cpu")
    stored = load_exit_logits(run / "exit_logits.npz")
    data = encode(load_split(data_dir, "test"), engine.tokenizer, engine.max_length)
    got = engine.run(data.features, None, batch_size=64)
    assert (got.exit_index == 2).all()
    np.testing.assert_allclose(got.logits, stored["test_logits"][:, -1], atol=1e-5)


def test_the_batch_shrinks_as_rows_exit(runs):
    """Rows that exited are not carried through later layers: the row-layers computed
    equal the sum of the exit layers taken, not batch x deepest layer."""
    run, data_dir = runs["joint"]
    engine = EarlyExitEngine.from_run(run, device="cpu")
    data = encode(load_split(data_dir, "dev"), engine.tokenizer, engine.max_length)
    seen = []
    layer = engine.model.stack.layer
    engine.model.stack.layer = lambda i, h, m: seen.append(len(h)) or layer(i, h, m)
    stored = load_exit_logits(run / "exit_logits.npz")["dev_logits"]
    knob = float(np.median(entropy(stored[:, 0])))  # about half the rows leave at exit 1
    got = engine.run(data.features, engine.policy("entropy", knob), batch_size=32)
    taken = np.array(engine.exit_layers)[got.exit_index]
    assert 1 < taken.mean() < 4  # a mix of early and late exits
    assert sum(seen) == taken.sum()


def test_arrival_order_and_inference_mode_give_the_same_answers(runs):
    run, data_dir = runs["pabee"]
    engine = EarlyExitEngine.from_run(run, device="cpu")
    data = encode(load_split(data_dir, "dev"), engine.tokenizer, engine.max_length)
    rule = engine.policy("patience", 2)
    a = engine.run(data.features, rule, batch_size=8)
    b = engine.run(data.features, rule, batch_size=8, sort_by_length=False, inference_mode=False)
    np.testing.assert_array_equal(a.exit_index, b.exit_index)
    np.testing.assert_array_equal(a.logits.argmax(-1), b.logits.argmax(-1))


def test_answers_carry_label_layer_score_and_flops(runs):
    run, _ = runs["joint"]
    engine = EarlyExitEngine.from_run(run, device="cpu")
    texts = ["market shares bank", "film music star award " * 5]
    answers = engine.classify(texts, policy="entropy", threshold=2.0, batch_size=2)
    assert [a.exit_layer for a in answers] == [1, 1]  # 2.0 > ln 3: everything exits first
    assert all(a.score_name == "entropy" and a.score < 2.0 for a in answers)
    assert answers[0].label_name == engine.label_names[answers[0].label]
    assert answers[1].truncated and not answers[0].truncated and answers[1].tokens == 12
    full = engine.classify(texts, policy="full", batch_size=2)
    assert [a.exit_layer for a in full] == [4, 4]
    assert all(f.flops > a.flops > 0 for f, a in zip(full, answers, strict=True))


def test_runtime_policy_errors():
    with pytest.raises(ConfigError, match="not a runtime policy"):
        runtime_policy("oracle", 0.0)
    with pytest.raises(ConfigError, match="unknown runtime policy 'nope'"):
        runtime_policy("nope", 0.0)
    with pytest.raises(ConfigError, match="does not apply to regression"):
        runtime_policy("entropy", 0.1, "regression")
    with pytest.raises(ConfigError, match="whole number"):
        runtime_policy("patience", 1.5)


def test_runtime_policies_score_like_the_vectorised_ones():
    """Same logits in, bit-identical scores out (the shared scoring functions)."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 4, 5)).astype(np.float32) * 3
    temps = np.array([1.5, 1.2, 0.9, 1.0])
    out = Outputs(z, np.zeros(50, int), "classification", temps)
    for name, knob in (("entropy", 0.8), ("confidence", 0.7), ("patience", 2)):
        rule = runtime_policy(name, knob, temperatures=temps)
        state = rule.start(50)
        fired = np.stack([rule.fires(e, torch.from_numpy(z[:, e]), None, state) for e in range(4)])
        expected = get_policy(name).exits(out, np.array([knob]))[0]
        fired[-1] = True
        np.testing.assert_array_equal(fired.argmax(0), expected)


def test_the_learned_policy_needs_a_model_with_an_exit_gate(runs):
    run, data_dir = runs["joint"]  # no gate
    engine = EarlyExitEngine.from_run(run, device="cpu")
    data = encode(load_split(data_dir, "dev"), engine.tokenizer, engine.max_length)
    with pytest.raises(ConfigError, match="needs per-exit scores .* this run has none"):
        engine.run(data.features, engine.policy("learned", 0.5), batch_size=8)
