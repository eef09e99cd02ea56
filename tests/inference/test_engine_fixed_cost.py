"""What the engine does besides the layers: padding once per run, one host transfer per
exit, masks only when a batch has padding and its rows changed, fused layers that answer
as the modules do (docs/performance.md, "The fixed cost of a pass")."""

import numpy as np
import pytest
import torch

from early_exit.data.prepared import load_split
from early_exit.exits.policies.entropy import entropy
from early_exit.exits.stored import load_exit_logits
from early_exit.inference.engine import EarlyExitEngine, pack
from early_exit.training.batching import encode


def features_of(engine, data_dir, split="dev"):
    return encode(load_split(data_dir, split), engine.tokenizer, engine.max_length).features


@pytest.mark.parametrize("side", ["right", "left"])
def test_a_packed_batch_is_what_the_tokenizer_pads(runs, side):
    run, data_dir = runs["joint"]
    engine = EarlyExitEngine.from_run(run, device="cpu")
    features = features_of(engine, data_dir)
    engine.tokenizer.padding_side = side
    try:
        packed = pack(features, engine.tokenizer)
        for rows in (np.array([0]), np.array([3, 1, 7, 2]), np.arange(len(features))):
            expected = engine.tokenizer.pad([features[i] for i in rows], return_tensors="pt")
            got = packed.batch(rows).inputs
            assert set(got) == set(expected)
            for key, value in expected.items():
                assert torch.equal(torch.from_numpy(got[key]), value), (side, key, rows)
    finally:
        engine.tokenizer.padding_side = "right"


def half_exit_rule(engine, run):
    stored = load_exit_logits(run / "exit_logits.npz")["dev_logits"]
    return engine.policy("entropy", float(np.median(entropy(stored[:, 0]))))


def test_one_host_transfer_per_exit_and_masks_only_when_rows_change(runs):
    run, data_dir = runs["joint"]
    engine = EarlyExitEngine.from_run(run, device="cpu")
    features = features_of(engine, data_dir)
    rule = half_exit_rule(engine, run)
    stack = engine.model.stack
    transfers, masks, layers = [], [], []
    backend = engine.backend
    host, layer_mask, layer = backend.host, stack.layer_mask, stack.layer
    backend.host = lambda logits, scores: transfers.append(len(logits)) or host(logits, scores)
    stack.layer_mask = lambda hidden, attn: masks.append(attn.shape) or layer_mask(hidden, attn)
    stack.layer = lambda i, h, m: layers.append((len(h), m is None)) or layer(i, h, m)
    try:
        got = engine.run(features, rule, batch_size=1)
        assert masks == []  # one row has no padding: no mask is ever built
        assert all(no_mask for _, no_mask in layers)
        # every example crossed one exit per layer it ran (exits at every layer)
        taken = np.array(engine.exit_layers)[got.exit_index]
        assert len(transfers) == taken.sum() == len(layers)
        transfers.clear(), layers.clear()
        got = engine.run(features, rule, batch_size=32)
        taken = np.array(engine.exit_layers)[got.exit_index]
        assert sum(transfers) == taken.sum()  # one transfer per exit, of the rows still there
        batches = len(range(0, len(features), 32))
        # a mask per batch with padding, and one more only after rows left (not per layer)
        shrinks = sum(1 for a, b in zip(transfers, transfers[1:], strict=False) if b < a)
        assert len(masks) <= batches + shrinks
        assert len(masks) < len(layers)
    finally:
        backend.host, stack.layer_mask, stack.layer = host, layer_mask, layer


@pytest.mark.parametrize("name,policy", [("joint", "entropy"), ("sledgehammer", "confidence")])
def test_fused_and_module_layers_decide_alike(runs, name, policy):
    run, data_dir = runs[name]
    fused = EarlyExitEngine.from_run(run, device="cpu")
    modules = EarlyExitEngine.from_run(run, device="cpu", fused=False)
    assert fused.model.stack.fused and fused.unfused_because is None
    assert not modules.model.stack.fused
    features = features_of(fused, data_dir, "test")
    for batch_size in (1, 32):
        for knob in (0.5, 0.8) if policy == "confidence" else (0.3, 0.6):
            a = fused.run(features, fused.policy(policy, knob), batch_size)
            b = modules.run(features, modules.policy(policy, knob), batch_size)
            np.testing.assert_array_equal(a.exit_index, b.exit_index)
            np.testing.assert_allclose(a.logits, b.logits, atol=1e-5)
