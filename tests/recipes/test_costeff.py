"""COST-EFF: its distillation losses by hand, and the whole slenderize pipeline on a tiny BERT."""

import contextlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tiny import TINY_SLENDERIZE, make_tiny_bert, prepare_tiny_task, tiny_training

from early_exit.data.prepared import load_split
from early_exit.exits.stored import load_exit_logits
from early_exit.inference.predict import predict
from early_exit.modeling.checkpoint import load_model_dir
from early_exit.modeling.pruning import layer_shapes, num_parameters
from early_exit.recipes import RecipeContext, get_recipe
from early_exit.recipes.costeff import hidden_mse, soft_cross_entropy, teaching_assistant_loss
from early_exit.recipes.costeff_phases import pruning_plan
from early_exit.recipes.teacher_cache import TeacherCache
from early_exit.runners.finetune import finetune
from early_exit.runners.slenderize import slenderize
from early_exit.runners.spec import RunSpec
from early_exit.support.errors import ConfigError
from early_exit.training import runtime
from early_exit.training.batching import Collator, encode, indexed, model_inputs

TRAINING = tiny_training(
    epochs=2, learning_rate=1e-2, weight_decay=0.01, warmup_ratio=0.1, bucket_batches=2
)


def test_soft_cross_entropy_by_hand():
    torch.manual_seed(0)
    student, teacher = torch.randn(4, 3, 5), torch.randn(4, 3, 5)
    t = 2.0
    got = soft_cross_entropy(student, teacher, t, "classification")
    p = torch.exp(teacher / t) / torch.exp(teacher / t).sum(-1, keepdim=True)
    log_q = student / t - torch.log(torch.exp(student / t).sum(-1, keepdim=True))
    torch.testing.assert_close(got, -(p * log_q).sum(-1).mean(0))
    assert got.shape == (3,)
    # its gradient vanishes where the student equals the teacher: why importance adds hard labels
    same = teacher.clone().requires_grad_(True)
    soft_cross_entropy(same, teacher, t, "classification").sum().backward()
    assert same.grad.abs().max() < 1e-6
    reg = soft_cross_entropy(student[..., :1], teacher[..., :1], t, "regression")
    torch.testing.assert_close(reg, ((student[..., 0] - teacher[..., 0]) ** 2).mean(0))


def test_hidden_mse_ignores_padding_and_averages_real_tokens():
    torch.manual_seed(0)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    student = [torch.randn(2, 4, 6) for _ in range(3)]
    teacher = [torch.randn(2, 4, 6) for _ in range(3)]
    got = hidden_mse(student, teacher, mask)
    expected = 0.0
    for s, t in zip(student, teacher, strict=True):
        per_example = [((s[b, :n] - t[b, :n]) ** 2).mean(-1).mean() for b, n in ((0, 3), (1, 2))]
        expected += sum(per_example) / 2
    torch.testing.assert_close(got, torch.as_tensor(expected))
    noisy = [s.clone() for s in student]
    for s in noisy:
        s[0, 3] += 100.0  # a padded position
        s[1, 2:] -= 50.0
    torch.testing.assert_close(hidden_mse(noisy, teacher, mask), got)


def test_teaching_assistant_loss_averages_soft_and_hard():
    torch.manual_seed(1)
    logits, final = torch.randn(5, 3, 4), torch.randn(5, 4)
    labels = torch.tensor([0, 1, 2, 3, 0])
    got = teaching_assistant_loss(logits, final, labels, 1.0, "classification")
    soft = sum(
        -(torch.softmax(final, -1) * torch.log_softmax(logits[:, e], -1)).sum(-1).mean()
        for e in range(3)
    )
    hard = sum(torch.nn.functional.cross_entropy(logits[:, e], labels) for e in range(3))
    torch.testing.assert_close(got, (soft + hard) / 2)


def test_recipe_metadata_and_checks():
    recipe = get_recipe("costeff")
    assert recipe.criterion == "entropy" and recipe.head == "tanh" and not recipe.static
    assert recipe.gradient_equilibrium
    recipe.check([1, 2, 3], 3)
    with pytest.raises(ConfigError, match="every layer and its exit"):
        recipe.check([1, 3], 3)
    with pytest.raises(ConfigError, match="slenderize rule"):
        recipe.stages({}, RecipeContext("classification", (1, 2, 3)))


def test_schedule_removes_heads_step_by_step_and_interpolates_widths():
    base = SimpleNamespace(num_attention_heads=12, intermediate_size=1536, hidden_size=384)
    plan = pruning_plan(base, {"heads_per_step": 3, "embedding_rank": 192}, 6, 768)
    assert plan == [(9, 1152, 288), (6, 768, 192)]
    tiny = SimpleNamespace(num_attention_heads=4, intermediate_size=64, hidden_size=32)
    assert pruning_plan(tiny, {"heads_per_step": 1}, 2, 32) == [(3, 48, None), (2, 32, None)]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    root = tmp_path_factory.mktemp("costeff")
    backbone = {"name": str(make_tiny_bert(root / "bert", dropout=0.1)), "pooling": "mean"}
    prepare_tiny_task(root, (("train", 48, 0), ("dev", 24, 1), ("test", 24, 2)))
    finetune(
        RunSpec(
            root / "data", root / "finetune", backbone, {"recipe": "finetune"}, TRAINING, 0,
            "cpu", 1, state_dir=root / "state",
        )
    )  # fmt: skip
    return root, backbone


def run(teacher, name):
    root, backbone = teacher
    method = {"recipe": "costeff", "teacher": "finetune", "slenderize": TINY_SLENDERIZE}
    spec = RunSpec(
        root / "data", root / name, backbone, method, TRAINING, 3, "cpu", 1,
        teacher=root / "finetune",
    )  # fmt: skip
    meta = slenderize(spec)
    return root / name, meta


def test_slenderize_writes_a_smaller_multi_exit_model(teacher):
    out, meta = run(teacher, "costeff")
    model, _, saved = load_model_dir(out)
    assert model.exit_layers == [1, 2, 3] and model.cfg.head == "tanh"
    assert layer_shapes(model.encoder) == {
        "heads": [2, 2, 2],
        "intermediate": [32, 32, 32],
        "embedding_rank": 16,
    }
    info = saved["slenderize"]
    assert info["num_parameters"] == num_parameters(model) < info["num_parameters_unpruned"]
    assert info["parameter_ratio"] == pytest.approx(
        info["num_parameters"] / info["num_parameters_unpruned"]
    )
    # predict, sweeps and analysis read it like any other model
    predict(out, teacher[0] / "data", out.parent / "costeff_logits.npz", device="cpu")
    stored = load_exit_logits(out.parent / "costeff_logits.npz")
    assert int(stored["num_parameters"]) == info["num_parameters"]
    assert stored["test_logits"].shape == (24, 3, 3)
    assert np.isfinite(stored["test_logits"]).all()
    # the same seed gives the same model
    again, _ = run(teacher, "costeff_again")
    first, second = (
        load_file(str(out / "model.safetensors")),
        load_file(str(again / "model.safetensors")),
    )
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_the_cached_assistant_gives_what_it_computes_per_batch(teacher):
    """Outputs kept per example and padded again equal the TA's forward on any batch."""
    root, _ = teacher
    model, tokenizer, _ = load_model_dir(root / "finetune")
    data = encode(load_split(root / "data", "train"), tokenizer, 16)
    collate = Collator(tokenizer, data)
    assert len(set(data.lengths)) > 1  # padding matters
    cpu = torch.device("cpu")
    cache = TeacherCache.build(model, collate, data.lengths, 5, cpu, contextlib.nullcontext())
    batch = indexed(collate, np.array([7, 0, 31, 12]))  # other rows than any build batch
    expected = model.eval()(**model_inputs(batch), output_hidden_states=True)
    got = cache.outputs(batch)
    torch.testing.assert_close(got.logits, expected.logits, rtol=1e-5, atol=1e-5)
    real = batch["attention_mask"].bool()
    assert len(got.hidden_states) == len(expected.hidden_states) == 4
    for ours, theirs in zip(got.hidden_states, expected.hidden_states, strict=True):
        torch.testing.assert_close(ours[real], theirs[real], rtol=1e-5, atol=1e-5)
        assert not ours[~real].any()  # padding is zeros, which hidden_mse masks


def test_slenderize_with_the_assistant_recomputed_per_batch_matches(teacher, monkeypatch):
    cached, _ = run(teacher, "costeff_cached")
    monkeypatch.setattr(runtime, "CACHE_LIMIT_BYTES", 0)  # nothing fits: per batch
    per_batch, _ = run(teacher, "costeff_per_batch")
    a = load_file(str(cached / "model.safetensors"))
    b = load_file(str(per_batch / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:  # the same numbers up to the padding of the batches that computed them
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-4, msg=key)
