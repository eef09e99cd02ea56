"""Each recipe's loss against a hand computation, DeeBERT's freeze, gradient equilibrium."""

import numpy as np
import pytest
import torch
from tiny import make_examples, make_tiny_bert, tiny_training

from early_exit.modeling.backbone import load_pretrained
from early_exit.modeling.model import ExitConfig, MultiExitModel, pool
from early_exit.recipes import RecipeContext, get_recipe
from early_exit.support.errors import ConfigError
from early_exit.training.batching import Collator, encode
from early_exit.training.loop import fit
from early_exit.training.settings import TrainingSettings

SETTINGS = TrainingSettings.from_config(tiny_training(weight_decay=0.01))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("bert"), dropout=0.0)


def model_for(tiny, recipe, exit_layers="all", **kw):
    torch.manual_seed(0)
    encoder, tokenizer = load_pretrained(str(tiny))
    r = get_recipe(recipe)
    cfg = ExitConfig(
        num_labels=3,
        exit_layers=exit_layers,
        head=r.head,
        dropout=0.0,
        gradient_equilibrium=r.gradient_equilibrium,
        **kw,
    )
    return MultiExitModel(encoder, cfg), tokenizer, r


def batch(tokenizer, n=6):
    examples = make_examples(n)
    data = encode(examples, tokenizer, 16)
    return Collator(tokenizer, data)(np.arange(n)), data


def hand_ce(logits, labels):
    """-log softmax(z)[y], averaged, written out by hand."""
    logz = torch.log(torch.exp(logits).sum(-1))
    return (logz - logits[torch.arange(len(labels)), labels]).mean()


def losses_by_hand(logits, labels):
    return torch.stack([hand_ce(logits[:, i], labels) for i in range(logits.shape[1])])


def ctx(model):
    return RecipeContext("classification", tuple(model.exit_layers))


def forward(model, b):
    inputs = {k: v for k, v in b.items() if k != "labels"}
    return model(**inputs).logits


@pytest.mark.parametrize("recipe", ["joint", "sledgehammer", "elasticbert"])
def test_unweighted_sum_recipes(tiny, recipe):
    model, tok, r = model_for(tiny, recipe)
    b, _ = batch(tok)
    logits = forward(model, b)
    (stage,) = r.stages(SETTINGS, ctx(model))
    expected = losses_by_hand(logits, b["labels"]).sum()
    torch.testing.assert_close(stage.loss(logits, b["labels"]), expected)


def test_pabee_loss_is_the_layer_weighted_average(tiny):
    model, tok, r = model_for(tiny, "pabee", exit_layers=[1, 3])
    b, _ = batch(tok)
    logits = forward(model, b)
    per_exit = losses_by_hand(logits, b["labels"])
    (stage,) = r.stages(SETTINGS, ctx(model))
    torch.testing.assert_close(
        stage.loss(logits, b["labels"]), (1 * per_exit[0] + 3 * per_exit[1]) / 4
    )
    assert len(model.poolers) == 1  # one shared pooler


def test_deebert_stages_losses_and_what_they_train(tiny):
    model, tok, r = model_for(tiny, "deebert")
    b, _ = batch(tok)
    logits = forward(model, b)
    per_exit = losses_by_hand(logits, b["labels"])
    first, second = r.stages(SETTINGS, ctx(model))
    torch.testing.assert_close(first.loss(logits, b["labels"]), per_exit[2])
    torch.testing.assert_close(second.loss(logits, b["labels"]), per_exit[0] + per_exit[1])
    names = [n for n, _ in model.named_parameters()]
    assert {n.split(".")[0] for n in names if first.trainable(n)} == {
        "encoder",
        "poolers",
        "classifiers",
    }
    assert all(
        n.split(".")[1] == "2" for n in names if first.trainable(n) and not n.startswith("encoder")
    )
    assert sorted({n.split(".")[1] for n in names if second.trainable(n)}) == ["0", "1"]
    assert not any(second.trainable(n) for n in names if n.startswith("encoder."))


def test_deebert_stage_two_leaves_backbone_and_final_head_unchanged(tiny, tmp_path):
    model, tok, r = model_for(tiny, "deebert")
    _, data = batch(tok, 24)
    _, second = r.stages(SETTINGS, ctx(model))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit(
        model,
        data,
        Collator(tok, data),
        [second],
        settings=SETTINGS,
        seed=0,
        device=torch.device("cpu"),
        state_dir=tmp_path / "state",
    )
    after = model.state_dict()
    frozen = [k for k in before if k.startswith("encoder.") or ".2." in k]
    trained = [k for k in before if k.startswith(("poolers.0", "classifiers.1"))]
    assert frozen and trained
    assert all(torch.equal(before[k], after[k]) for k in frozen)  # bit for bit
    assert all(not torch.equal(before[k], after[k]) for k in trained)


def test_deebert_needs_the_final_classifier_and_baselines_one_exit():
    with pytest.raises(ConfigError, match="final classifier at the last layer"):
        get_recipe("deebert").check([1, 2], 3)
    with pytest.raises(ConfigError, match="exactly one exit"):
        get_recipe("static").check([1, 2], 3)
    with pytest.raises(ConfigError, match="allowed: berxit, costeff, deebert, elasticbert"):
        get_recipe("deebert2")


def test_sledgehammer_exit_classifies_a_normalised_mix_of_layers(tiny):
    model, tok, _ = model_for(tiny, "sledgehammer", exit_layers=[1, 3])
    model.eval()
    b, _ = batch(tok)
    inputs = {k: v for k, v in b.items() if k != "labels"}
    logits = model(**inputs).logits
    hidden = model.encoder(**inputs, output_hidden_states=True).hidden_states
    pooled = torch.stack(
        [model.poolers[0](pool(h, b["attention_mask"], "cls")) for h in hidden[1:]], dim=-1
    )  # [batch, hidden, 3 layers]
    w = model.mix[1] / model.mix[1].norm()
    torch.testing.assert_close(logits[:, 1], model.classifiers[1](pooled @ w))
    assert model.mix[0].shape == (1,)


def test_sledgehammer_mix_weights_change_when_the_recipe_trains(tiny, tmp_path):
    # the released code re-wraps them in new Parameters each forward pass, so the
    # optimiser (built once) never updates them; here the training loop must
    model, tok, r = model_for(tiny, "sledgehammer", exit_layers=[1, 3])
    _, data = batch(tok, 24)
    before = [w.detach().clone() for w in model.mix]
    mix_ids = [id(w) for w in model.mix]
    fit(
        model,
        data,
        Collator(tok, data),
        r.stages(SETTINGS, ctx(model)),
        settings=SETTINGS,
        seed=0,
        device=torch.device("cpu"),
        state_dir=tmp_path / "state",
    )
    assert [id(w) for w in model.mix] == mix_ids  # still the module's own parameters
    for old, new in zip(before, model.mix, strict=True):
        if len(old) > 1:  # a 1-layer mix is w/|w| = ±1 whatever w is: only its scale moves
            assert not torch.allclose(old / old.norm(), new.detach() / new.detach().norm())
        assert not torch.equal(old, new.detach())


def grads(model, b, exit_index):
    model.zero_grad()
    loss = torch.nn.functional.cross_entropy(forward(model, b)[:, exit_index], b["labels"])
    loss.backward()
    return {i: model.encoder.encoder.layer[i].output.dense.weight.grad.clone() for i in range(3)}


@pytest.mark.parametrize("exit_index", [0, 1, 2])
def test_gradient_equilibrium_scales_each_layers_gradient_by_one_over_exits_ahead(tiny, exit_index):
    """With exits at layers 1..3, layer i's gradient from any exit loss is scaled by 1/(3-i+1)
    relative to plain backpropagation (ElasticBERT: 1/(L-i) into the exit, (L-i-1) onward)."""
    ge, tok, _ = model_for(tiny, "elasticbert")
    plain, _, _ = model_for(tiny, "joint")
    plain.load_state_dict(ge.state_dict())
    ge.train()
    plain.train()
    b, _ = batch(tok)
    with_ge, without = grads(ge, b, exit_index), grads(plain, b, exit_index)
    for layer in range(exit_index + 1):
        expected = without[layer] / (3 - layer)
        torch.testing.assert_close(with_ge[layer], expected, rtol=1e-4, atol=1e-8)
    ge.eval()  # no rescaling at inference
    torch.testing.assert_close(forward(ge, b), forward(plain.eval(), b))
