"""Width pruning: exactly the chosen weights go, zero-importance pruning changes nothing,
importance sees every exit, pruned models save, load and count FLOPs at their new shapes."""

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from tiny import make_examples, make_tiny_bert

from early_exit.modeling.backbone import load_pretrained
from early_exit.modeling.checkpoint import load_model_dir, save_model_dir
from early_exit.modeling.flops import exit_flops_polynomial
from early_exit.modeling.model import ExitConfig, MultiExitModel
from early_exit.modeling.pruning import (
    FactorizedEmbedding,
    layer_shapes,
    num_parameters,
    prune_layer_heads,
    prune_layer_neurons,
    prune_to,
    taylor_importance,
)
from early_exit.modeling.widths import check_slenderize, target_widths
from early_exit.recipes.losses import exit_losses
from early_exit.support.errors import ConfigError, DataError
from early_exit.training.batching import Collator, encode

HIDDEN, HEADS, SIZE, INTER = 32, 4, 8, 64


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("bert"), num_layers=2, dropout=0.0)


def build(tiny, exits=(1, 2)):
    torch.manual_seed(0)
    encoder, tokenizer = load_pretrained(str(tiny))
    cfg = ExitConfig(num_labels=3, exit_layers=list(exits), head="tanh", dropout=0.0)
    return MultiExitModel(encoder, cfg).eval(), tokenizer


def batches(tokenizer, n=12, size=4):
    data = encode(make_examples(n), tokenizer, 16)
    collate = Collator(tokenizer, data)
    return [collate(np.arange(i, min(i + size, n))) for i in range(0, n, size)]


def logits(model, batch):
    with torch.no_grad():
        return model(**{k: v for k, v in batch.items() if k != "labels"}).logits


def all_exits_loss(model, batch):
    out = logits_with_grad(model, batch)
    return exit_losses(out, batch["labels"], "classification").sum()


def final_exit_loss(model, batch):
    out = logits_with_grad(model, batch)
    return exit_losses(out, batch["labels"], "classification")[-1]


def logits_with_grad(model, batch):
    return model(**{k: v for k, v in batch.items() if k != "labels"}).logits


def test_pruning_one_head_removes_exactly_its_weights(tiny):
    model, _ = build(tiny)
    layer = model.encoder.encoder.layer[0]
    before = {n: p.detach().clone() for n, p in layer.named_parameters()}
    prune_layer_heads(layer, [0, 2, 3], SIZE)  # drop head 1
    kept = torch.cat([torch.arange(0, SIZE), torch.arange(2 * SIZE, 4 * SIZE)])
    for name in ("query", "key", "value"):
        lin = getattr(layer.attention.self, name)
        assert lin.weight.shape == (3 * SIZE, HIDDEN)
        torch.testing.assert_close(lin.weight, before[f"attention.self.{name}.weight"][kept])
        torch.testing.assert_close(lin.bias, before[f"attention.self.{name}.bias"][kept])
    out = layer.attention.output.dense
    assert out.weight.shape == (HIDDEN, 3 * SIZE)
    torch.testing.assert_close(out.weight, before["attention.output.dense.weight"][:, kept])
    torch.testing.assert_close(out.bias, before["attention.output.dense.bias"])
    assert layer.attention.self.num_attention_heads == 3
    # the other layer and the FFN are untouched
    torch.testing.assert_close(layer.intermediate.dense.weight, before["intermediate.dense.weight"])
    assert layer_shapes(model.encoder)["heads"] == [3, 4]


def test_pruning_one_neuron_removes_exactly_its_row_and_column(tiny):
    model, _ = build(tiny)
    layer = model.encoder.encoder.layer[1]
    w_in = layer.intermediate.dense.weight.detach().clone()
    b_in = layer.intermediate.dense.bias.detach().clone()
    w_out = layer.output.dense.weight.detach().clone()
    keep = [i for i in range(INTER) if i != 5]
    prune_layer_neurons(layer, keep)
    assert layer.intermediate.dense.weight.shape == (INTER - 1, HIDDEN)
    assert layer.output.dense.weight.shape == (HIDDEN, INTER - 1)
    torch.testing.assert_close(layer.intermediate.dense.weight, w_in[keep])
    torch.testing.assert_close(layer.intermediate.dense.bias, b_in[keep])
    torch.testing.assert_close(layer.output.dense.weight, w_out[:, keep])
    assert layer_shapes(model.encoder)["intermediate"] == [INTER, INTER - 1]


def test_pruning_zero_importance_structures_leaves_outputs_unchanged(tiny):
    model, tok = build(tiny)
    data = batches(tok)
    with torch.no_grad():
        for layer in model.encoder.encoder.layer:
            layer.attention.output.dense.weight[:, SIZE : 2 * SIZE] = 0  # head 1 writes nothing
            layer.output.dense.weight[:, [3, 7]] = 0  # neurons 3 and 7 write nothing
    before = [logits(model, b) for b in data]
    importance = taylor_importance(model, model.encoder, data, all_exits_loss)
    for heads, neurons in zip(importance.heads, importance.neurons, strict=True):
        assert heads[1] == 0 and (heads[[0, 2, 3]] > 0).all()
        assert neurons[3] == 0 and neurons[7] == 0 and (neurons > 0).sum() == INTER - 2
    prune_to(model.encoder, importance, heads=3, intermediate=INTER - 2)
    assert layer_shapes(model.encoder)["heads"] == [3, 3]
    for b, expected in zip(data, before, strict=True):
        torch.testing.assert_close(logits(model.eval(), b), expected, rtol=1e-5, atol=1e-6)


def test_importance_uses_every_exit(tiny):
    """Only the internal exit (layer 1) depends on layer 1's head 2: it must be kept."""
    model, tok = build(tiny)
    data = batches(tok)
    with torch.no_grad():
        attn_out = model.encoder.encoder.layer[0].attention.output.dense.weight
        attn_out[:, : 2 * SIZE] = 0
        attn_out[:, 3 * SIZE :] = 0  # only head 2 of layer 1 writes anything
        model.classifiers[1].weight.zero_()  # the final exit ignores its input
    final_only = taylor_importance(model, model.encoder, data, final_exit_loss)
    assert (final_only.heads[0] == 0).all()  # the last exit alone would see no head
    every = taylor_importance(model, model.encoder, data, all_exits_loss)
    assert every.heads[0][2] > 0 and (every.heads[0][[0, 1, 3]] == 0).all()
    query = model.encoder.encoder.layer[0].attention.self.query.weight.detach().clone()
    prune_to(model.encoder, every, heads=1, intermediate=INTER)
    torch.testing.assert_close(
        model.encoder.encoder.layer[0].attention.self.query.weight,
        query[2 * SIZE : 3 * SIZE],
    )


def test_pruned_model_saves_and_loads_without_the_original(tiny, tmp_path):
    source = tmp_path / "backbone"
    shutil.copytree(tiny, source)
    torch.manual_seed(0)
    encoder, tok = load_pretrained(str(source))
    model = MultiExitModel(encoder, ExitConfig(num_labels=3, exit_layers="all", head="tanh"))
    data = batches(tok)
    importance = taylor_importance(model, model.encoder, data, all_exits_loss)
    prune_to(model.encoder, importance, heads=2, intermediate=24, embedding_rank=12)
    assert isinstance(model.encoder.embeddings.word_embeddings, FactorizedEmbedding)
    model.eval()
    expected = [logits(model, b) for b in data]
    save_model_dir(tmp_path / "model", model, tok, {"label_names": ["a", "b", "c"]})
    shutil.rmtree(source)  # the original is gone
    loaded, _, _ = load_model_dir(tmp_path / "model")
    assert layer_shapes(loaded.encoder) == {
        "heads": [2, 2],
        "intermediate": [24, 24],
        "embedding_rank": 12,
    }
    assert num_parameters(loaded) == num_parameters(model)
    for b, want in zip(data, expected, strict=True):
        torch.testing.assert_close(logits(loaded.eval(), b), want)


def test_wrong_shapes_in_the_config_are_named(tiny, tmp_path):
    model, tok = build(tiny)
    importance = taylor_importance(model, model.encoder, batches(tok), all_exits_loss)
    prune_to(model.encoder, importance, heads=2, intermediate=32)
    save_model_dir(tmp_path / "model", model, tok, {})
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    config["pruned_shapes"]["heads"] = [3, 2]
    (tmp_path / "model" / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match="config.json: checksum differs"):
        load_model_dir(tmp_path / "model")
    (tmp_path / "model" / "checksums.json").unlink()  # as written before checksums: shapes
    with pytest.raises(DataError, match="pruned_shapes.*size mismatch"):
        load_model_dir(tmp_path / "model")
    config["pruned_shapes"]["heads"] = [2, 9]
    (tmp_path / "model" / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match="pruned_shapes: layer 2 has 9 heads"):
        load_model_dir(tmp_path / "model")


def test_flop_counter_sees_the_pruned_shapes(tiny):
    model, tok = build(tiny)
    full = exit_flops_polynomial(model)
    importance = taylor_importance(model, model.encoder, batches(tok), all_exits_loss)
    prune_to(model.encoder, importance, heads=1, intermediate=16, embedding_rank=8)
    pruned = exit_flops_polynomial(model)
    assert (pruned[:, 1] < full[:, 1]).all() and (pruned[:, 2] < full[:, 2]).all()
    # per layer: projections 8*s*h*a (a = kept heads * head size), scores 4*s^2*a,
    # FFN 4*s*h*I; the factorised embedding adds 2*s*r*h before the first layer
    a, inter, rank = SIZE, 16, 8
    heads_flops = 2 * HIDDEN * 3  # each exit's classifier (tanh head: no dense)
    assert pruned[0, 1] == 2 * rank * HIDDEN + 8 * HIDDEN * a + 4 * HIDDEN * inter
    assert pruned[0, 2] == 4 * a
    assert pruned[0, 0] == heads_flops
    assert pruned[1, 1] - pruned[0, 1] == 8 * HIDDEN * a + 4 * HIDDEN * inter


@pytest.mark.parametrize(
    ("heads", "inter", "message"),
    [
        (5, None, r"slenderize.heads: 5 is not in 1..4"),
        (0, None, r"slenderize.heads: 0 is not in 1..4"),
        (2, 65, r"slenderize.intermediate: 65 is not in 1..64"),
    ],
)
def test_bad_targets_are_named(tiny, heads, inter, message):
    model, _ = build(tiny)
    with pytest.raises(ConfigError, match=message):
        target_widths(model.encoder.config, heads, inter)
    assert target_widths(model.encoder.config, 2, None) == (2, 32)


def test_a_target_that_does_not_divide_the_ffn_is_named():
    config = SimpleNamespace(num_attention_heads=12, intermediate_size=1000)
    with pytest.raises(ConfigError, match="5 of 12 heads does not divide the FFN size 1000"):
        target_widths(config, 5, None)
    assert target_widths(config, 6, None) == (6, 500)


def test_heads_per_step_and_embedding_rank_are_checked():
    config = SimpleNamespace(num_attention_heads=12, intermediate_size=1536, hidden_size=384)
    with pytest.raises(ConfigError, match="heads_per_step: 4 does not divide the 6 heads"):
        check_slenderize(config, {"heads": 6, "heads_per_step": 4})
    with pytest.raises(ConfigError, match="embedding_rank: 500 is not in 1..384"):
        check_slenderize(config, {"heads": 6, "heads_per_step": 3, "embedding_rank": 500})
    assert check_slenderize(config, {"heads": 6, "heads_per_step": 3}) == (6, 768)
