"""BERxiT: the LTE gate, its targets, the alternating loss and what each step trains."""

import json

import numpy as np
import pytest
import torch
from tiny import make_examples, make_tiny_bert, tiny_training

from early_exit.modeling.backbone import load_pretrained
from early_exit.modeling.checkpoint import EXIT_CONFIG, load_model_dir, save_model_dir
from early_exit.modeling.model import ExitConfig, MultiExitModel
from early_exit.recipes import RecipeContext, get_recipe
from early_exit.recipes.berxit import alternate_lte_loss, lte_targets
from early_exit.support.atomic import CHECKSUMS
from early_exit.training.batching import Collator, encode
from early_exit.training.loop import fit
from early_exit.training.settings import TrainingSettings

SETTINGS = TrainingSettings.from_config(tiny_training())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("bert"), dropout=0.0)


def berxit_model(tiny, gate="lte", num_labels=3):
    torch.manual_seed(0)
    encoder, tokenizer = load_pretrained(str(tiny))
    cfg = ExitConfig(num_labels=num_labels, exit_layers="all", dropout=0.0, exit_gate=gate)
    return MultiExitModel(encoder, cfg), tokenizer


def batch(tokenizer, n=6):
    data = encode(make_examples(n), tokenizer, 16)
    return Collator(tokenizer, data)(np.arange(n)), data


def run(model, b):
    return model(**{k: v for k, v in b.items() if k != "labels"})


def test_gate_outputs_one_sigmoid_per_exit_from_the_pooled_vector(tiny):
    model, tok = berxit_model(tiny)
    b, _ = batch(tok)
    out = run(model, b)
    assert out.exit_scores.shape == (6, 3)
    # by hand: the shared gate on exit 1's pooled vector (pooler of mean-free cls pooling)
    model.eval()
    hidden, mask = model.stack.embed(b["input_ids"], b["attention_mask"], b["token_type_ids"])
    hidden = model.stack.layer(0, hidden, mask)
    pooled = model.poolers[0](hidden[:, 0])
    expected = torch.sigmoid(model.gate(pooled))[:, 0]
    torch.testing.assert_close(run(model, b).exit_scores[:, 0], expected)


def test_models_without_a_gate_return_no_scores(tiny):
    model, tok = berxit_model(tiny, gate=None)
    assert run(model, batch(tok)[0]).exit_scores is None
    assert not hasattr(model, "gate")


def test_lte_targets_classification_and_regression():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 1.0]], [[0.0, 3.0], [0.0, 1.0]]])  # [2, 2, 2]
    labels = torch.tensor([0, 0])
    assert lte_targets(logits, labels, "classification").tolist() == [[0.0, 1.0], [1.0, 1.0]]
    reg = torch.tensor([[[0.5], [2.0]], [[-1.0], [1.0]]])
    y = torch.tensor([1.0, 1.0])
    expected = [[abs(np.tanh(-0.5)), np.tanh(1.0)], [abs(np.tanh(-2.0)), 0.0]]
    torch.testing.assert_close(lte_targets(reg, y, "regression"), torch.tensor(expected).float())


def test_alternate_loss_even_final_odd_internal_plus_lte():
    torch.manual_seed(1)
    logits = torch.randn(4, 3, 2)
    scores = torch.rand(4, 3)
    labels = torch.tensor([0, 1, 1, 0])
    ce = [torch.nn.functional.cross_entropy(logits[:, i], labels) for i in range(3)]
    wrong = (logits.argmax(-1) != labels[:, None]).float()
    lte = ((scores - wrong) ** 2).mean()
    torch.testing.assert_close(
        alternate_lte_loss(logits, scores, labels, "classification", 0), ce[2] + lte
    )
    torch.testing.assert_close(
        alternate_lte_loss(logits, scores, labels, "classification", 7), ce[0] + ce[1] + lte
    )


def grads_at(model, b, step):
    (stage,) = get_recipe("berxit").stages(SETTINGS, RecipeContext("classification", (1, 2, 3)))
    model.zero_grad()
    stage.step_loss(model, b, step).backward()
    return {n: p.grad for n, p in model.named_parameters()}


def test_even_steps_train_the_final_classifier_odd_steps_the_internal_ones(tiny):
    model, tok = berxit_model(tiny)
    b, _ = batch(tok)
    even, odd = grads_at(model, b, 0), grads_at(model, b, 1)
    assert torch.count_nonzero(even["classifiers.2.weight"]) > 0
    assert torch.count_nonzero(even["classifiers.0.weight"]) == 0
    assert torch.count_nonzero(odd["classifiers.0.weight"]) > 0
    assert torch.count_nonzero(odd["classifiers.2.weight"]) == 0
    for grads in (even, odd):  # the gate and, through it, every pooler and the backbone
        assert torch.count_nonzero(grads["gate.weight"]) > 0
        assert torch.count_nonzero(grads["poolers.0.dense.weight"]) > 0
        assert any(torch.count_nonzero(g) > 0 for n, g in grads.items() if n.startswith("encoder."))


def test_fit_trains_the_gate_towards_the_exits_correctness(tiny, tmp_path):
    model, tok = berxit_model(tiny)
    _, data = batch(tok, 48)
    settings = SETTINGS.replace(epochs=4)
    stages = get_recipe("berxit").stages(settings, RecipeContext("classification", (1, 2, 3)))
    b, _ = batch(tok, 48)
    model.eval()
    with torch.no_grad():
        out = run(model, b)
    wrong = lte_targets(out.logits, b["labels"], "classification")
    before = float(((out.exit_scores - wrong) ** 2).mean())
    cpu = torch.device("cpu")
    collate = Collator(tok, data)
    fit(model, data, collate, stages, settings=settings, seed=0, device=cpu, state_dir=tmp_path)
    model.eval()
    with torch.no_grad():
        out = run(model, b)
    wrong = lte_targets(out.logits, b["labels"], "classification")
    assert float(((out.exit_scores - wrong) ** 2).mean()) < before


def test_gate_saved_and_loaded_and_old_model_dirs_still_load(tiny, tmp_path):
    model, tok = berxit_model(tiny)
    b, _ = batch(tok)
    model.eval()
    meta = {"label_names": ["a", "b", "c"]}
    save_model_dir(tmp_path / "m", model, tok, meta)
    loaded, _, _ = load_model_dir(tmp_path / "m")
    loaded.eval()
    torch.testing.assert_close(run(loaded, b).exit_scores, run(model, b).exit_scores)
    plain, _ = berxit_model(tiny, gate=None)
    save_model_dir(tmp_path / "old", plain, tok, meta)
    cfg_path = tmp_path / "old" / EXIT_CONFIG
    saved = json.loads(cfg_path.read_text())
    del saved["exit"]["exit_gate"]  # written before the gate existed
    cfg_path.write_text(json.dumps(saved))
    (tmp_path / "old" / CHECKSUMS).unlink()  # nor checksums
    old, _, _ = load_model_dir(tmp_path / "old")
    assert old.cfg.exit_gate is None and run(old.eval(), b).exit_scores is None


def test_berxit_builds_a_gated_model_and_needs_internal_exits():
    recipe = get_recipe("berxit")
    assert recipe.exit_gate == "lte" and recipe.criterion == "learned"
    with pytest.raises(Exception, match="exit_layers: BERxiT needs internal exits"):
        recipe.check([3], 3)
