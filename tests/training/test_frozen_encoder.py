"""Head-only stages on a frozen encoder: cached exit inputs train what per-batch ones do."""

import pytest
import torch
from safetensors.torch import load_file
from tiny import make_tiny_bert, prepare_tiny_task, tiny_training

from early_exit.data.prepared import load_split
from early_exit.modeling.backbone import load_backbone
from early_exit.recipes import RecipeContext
from early_exit.runners.finetune import build_model, finetune
from early_exit.runners.spec import RunSpec
from early_exit.training import runtime
from early_exit.training.batching import Collator, encode
from early_exit.training.loop import stage_mode
from early_exit.training.settings import TrainingSettings
from early_exit.training.stage import Stage

# 60 examples in batches of 8: 8 steps per epoch, 2 epochs per stage; stage 2 is steps 17-32
TRAINING = tiny_training(epochs=2, learning_rate=1e-2, checkpoint_every=3)
SETTINGS = TrainingSettings.from_config(TRAINING)
DEEBERT = {"recipe": "deebert", "exit_layers": "all"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("frozen")
    # dropout 0.3 in the encoder: had the frozen stage left it on, runs would differ
    backbone = {"name": str(make_tiny_bert(root / "bert", dropout=0.3)), "pooling": "mean"}
    prepare_tiny_task(root, (("train", 60, 0), ("dev", 10, 1), ("test", 10, 2)))
    return root, backbone


def train(setup, name, on_step=None):
    root, backbone = setup
    out = root / name
    spec = RunSpec(
        root / "data", out / "model", backbone, DEEBERT, TRAINING, 0, "cpu", 1, out / "state"
    )
    finetune(spec, on_step=on_step)
    return load_file(str(out / "model" / "model.safetensors"))


@pytest.fixture(scope="module")
def cached(setup):
    return train(setup, "cached")


def assert_close_weights(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=atol, msg=key)


def test_cached_and_per_batch_exit_inputs_train_the_same_heads(setup, cached, monkeypatch):
    monkeypatch.setattr(runtime, "CACHE_LIMIT_BYTES", 0)  # nothing fits: per batch
    per_batch = train(setup, "per-batch")
    # the same vectors up to the padding of the batches that computed them
    assert_close_weights(cached, per_batch, atol=1e-5)


def test_a_run_interrupted_in_the_frozen_stage_resumes_to_the_same_weights(setup, cached):
    def interrupt(state):
        if state.step == 21:  # mid-epoch in stage 2, after a checkpoint at step 21
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(setup, "resumed", on_step=interrupt)
    # the cache is rebuilt from the restored encoder: bit for bit the uninterrupted run
    assert_close_weights(train(setup, "resumed"), cached)


def encoded(setup):
    tokenizer = load_backbone(setup[1])[1]
    data = encode(load_split(setup[0] / "data", "train"), tokenizer, 16)
    return data, Collator(tokenizer, data)


def test_a_frozen_stage_runs_the_encoder_without_dropout_and_the_heads_with_it(setup):
    model, _, recipe = build_model(setup[1], DEEBERT, 3)
    _, highways = recipe.stages(SETTINGS, RecipeContext("classification", (1, 2, 3)))
    data, collate = encoded(setup)
    cpu = torch.device("cpu")
    cache = stage_mode(model, highways, data, collate, SETTINGS, cpu)
    assert not any(m.training for m in model.encoder.modules())
    assert model.dropout.training and model.classifiers.training
    assert cache([0, 5])["exit_inputs"].shape == (2, 3, model.stack.hidden_size)
    whole = Stage("whole", highways.loss, 1, 1e-3)
    assert stage_mode(model, whole, data, collate, SETTINGS, cpu) is collate
    assert all(m.training for m in model.modules())


def test_a_frozen_stage_that_trains_the_encoder_is_refused(setup):
    model, _, _ = build_model(setup[1], DEEBERT, 3)
    bad = Stage("bad", None, 1, 1e-3, frozen_encoder=True)  # trains everything
    with pytest.raises(ValueError, match="stage bad: frozen encoder, yet it trains encoder"):
        stage_mode(model, bad, None, None, SETTINGS, torch.device("cpu"))
