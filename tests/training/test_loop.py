import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tiny import make_tiny_bert, prepare_tiny_task, tiny_training

from early_exit.analysis.results import results_markdown, summary_table
from early_exit.exits.operating_points import operating_points
from early_exit.exits.stored import load_exit_logits
from early_exit.exits.sweep import sweep_file
from early_exit.inference.predict import predict
from early_exit.modeling.checkpoint import load_model_dir
from early_exit.runners.finetune import finetune
from early_exit.runners.spec import RunSpec
from early_exit.support.errors import DataError
from early_exit.training import hardware, loop
from early_exit.training.batching import bucketed_batches
from early_exit.training.loop import make_optimizer
from early_exit.training.settings import TrainingSettings
from early_exit.training.stage import Stage

TRAINING = tiny_training(
    epochs=3,
    learning_rate=1e-2,
    weight_decay=0.01,
    warmup_ratio=0.1,
    bucket_batches=2,
    checkpoint_every=4,
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    backbone = {"name": str(make_tiny_bert(root / "bert")), "pooling": "mean"}
    splits = (("train", 60, 0), ("dev", 30, 1), ("test", 30, 2), ("test_mismatched", 20, 3))
    prepare_tiny_task(root, splits)
    return root, backbone


def run(setup, name, seed=0, on_step=None, training=TRAINING):
    root, backbone = setup
    method = {"recipe": "joint", "exit_layers": "all"}
    spec = RunSpec(
        root / "data",
        root / name / "model",
        backbone,
        method,
        training,
        seed,
        "cpu",
        1,
        state_dir=root / name / "state",
    )
    return finetune(spec, on_step=on_step)


def weights(setup, name):
    return load_file(str(setup[0] / name / "model" / "model.safetensors"))


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


@pytest.fixture(scope="module")
def reference(setup):
    """One uninterrupted run that other tests compare against."""
    return run(setup, "a")


def test_training_lowers_the_loss_and_is_deterministic(setup, reference):
    first = reference
    run(setup, "b")
    losses = [e["mean_loss"] for e in first["progress"]["epoch_losses"]]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert_same_weights(weights(setup, "a"), weights(setup, "b"))
    assert not (setup[0] / "a" / "state").exists()  # resume state removed after success


def test_a_different_seed_gives_different_weights(setup, reference):
    run(setup, "seed1", seed=1)
    a, b = weights(setup, "a"), weights(setup, "seed1")
    assert any(not torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("stop_at", [6, 8])  # mid-epoch and right at an epoch boundary
def test_an_interrupted_run_resumes_to_the_same_weights(setup, reference, stop_at):
    name = f"resumed{stop_at}"

    def interrupt(progress):
        if progress.step == stop_at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(setup, name, on_step=interrupt)
    assert not (setup[0] / name / "model").exists()  # nothing that looks complete
    assert (setup[0] / name / "state").exists()
    resumed = run(setup, name)
    assert resumed["progress"]["step"] == 24  # 3 epochs x 8 batches, none repeated
    assert_same_weights(weights(setup, name), weights(setup, "a"))


def test_saved_model_reloads_and_predicts_what_it_computed(setup, reference, tmp_path):
    root = setup[0]
    model, tokenizer, meta = load_model_dir(root / "a" / "model")
    assert len(meta["label_names"]) == 3
    predict(root / "a" / "model", root / "data", tmp_path / "l.npz", batch_size=7, device="cpu")
    stored = load_exit_logits(tmp_path / "l.npz")
    assert stored["splits"].tolist() == ["dev", "test", "test_mismatched"]  # from the manifest
    assert stored["test_mismatched_logits"].shape == (20, 3, 3)
    assert stored["dev_logits"].shape == (30, 3, 3)
    assert stored["exit_layers"].tolist() == [1, 2, 3]
    # logits stored in example order equal a one-example-at-a-time forward pass
    model.eval()
    dev = [json.loads(line) for line in (root / "data" / "dev.jsonl").read_text().splitlines()]
    for i in (0, 7, 29):
        enc = tokenizer(dev[i]["text"], truncation=True, max_length=16, return_tensors="pt")
        with torch.no_grad():
            one = model(**enc).logits[0].numpy()
        np.testing.assert_allclose(stored["dev_logits"][i], one, atol=1e-5)
        assert stored["dev_lengths"][i] == enc["input_ids"].shape[1]
        assert stored["dev_labels"][i] == dev[i]["label"]
    assert (stored["dev_logits"][:, -1].argmax(-1) == stored["dev_labels"]).mean() > 0.6


def test_bucketed_batches_cover_every_example_once_and_repeat_per_seed():
    lengths = np.random.default_rng(0).integers(1, 50, 103)
    batches = bucketed_batches(lengths, 8, seed=1, epoch=0, bucket_batches=4)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(103))
    assert all(len(b) <= 8 for b in batches)
    again = bucketed_batches(lengths, 8, seed=1, epoch=0, bucket_batches=4)
    assert all((x == y).all() for x, y in zip(batches, again, strict=True))
    other = bucketed_batches(lengths, 8, seed=1, epoch=1, bucket_batches=4)
    assert any((x != y).any() for x, y in zip(batches, other, strict=False))
    # bucketing keeps padding low: within a batch lengths are close
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < np.ptp(lengths) / 3


def test_a_saved_state_from_other_settings_is_not_resumed(setup, reference):
    def interrupt(progress):
        if progress.step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(setup, "stale", on_step=interrupt, training={**TRAINING, "learning_rate": 1e-3})
    steps = []
    run(setup, "stale", on_step=lambda p: steps.append(p.step))
    assert steps[0] == 1  # started over rather than continuing the other run's state
    assert_same_weights(weights(setup, "stale"), weights(setup, "a"))


def test_extra_test_splits_are_swept_and_reported_apart(setup, reference, tmp_path):
    root = setup[0]
    predict(root / "a" / "model", root / "data", tmp_path / "l.npz", batch_size=16, device="cpu")
    table = sweep_file(
        tmp_path / "l.npz",
        tmp_path / "s.tsv",
        {"entropy": {"num_thresholds": 5}},
        None,
        {"task": "tiny", "method": "joint", "seed": 0},
    )
    assert sorted(table.split.unique()) == ["dev", "test", "test_mismatched"]
    points = operating_points(table, 0.01)
    assert points.test_split.tolist() == ["test", "test_mismatched"]
    assert points.threshold.nunique() == 1  # one knob, chosen on dev, reported on both
    text = results_markdown(summary_table(points), 0.01, "tiny")
    assert "| Split " in text and "test_mismatched" in text


BF16 = {**TRAINING, "precision": "bf16"}


def test_bf16_without_native_support_trains_in_fp32(setup, reference, monkeypatch, caplog):
    """Emulated bf16 is slower than fp32: such hardware trains in fp32, says so and
    records it, bit for bit the fp32 run."""
    monkeypatch.setattr(loop, "native_bf16", lambda device: False)
    loop._warn_no_bf16.cache_clear()
    meta = run(setup, "bf16-emulated", training=BF16)
    assert_same_weights(weights(setup, "bf16-emulated"), weights(setup, "a"))
    assert meta["precision"] == "fp32" and reference["precision"] == "fp32"
    warnings = [r for r in caplog.records if "no native bf16" in r.getMessage()]
    assert len(warnings) == 1  # once, not at every step


def test_bf16_with_native_support_autocasts_repeatably(setup, reference, monkeypatch):
    monkeypatch.setattr(loop, "native_bf16", lambda device: True)
    cpu = torch.device("cpu")
    with loop.autocast(cpu, TrainingSettings.from_config(BF16)):
        assert torch.nn.Linear(4, 4)(torch.ones(2, 4)).dtype == torch.bfloat16
    plain = TrainingSettings.from_config(TRAINING)
    with loop.autocast(cpu, plain):  # fp32 settings: fp32 whatever the hardware
        assert torch.nn.Linear(4, 4)(torch.ones(2, 4)).dtype == torch.float32
    first = run(setup, "bf16-a", training=BF16)
    run(setup, "bf16-b", training=BF16)
    assert first["precision"] == "bf16"
    a, fp32 = weights(setup, "bf16-a"), weights(setup, "a")
    assert_same_weights(a, weights(setup, "bf16-b"))  # repeatable for a fixed seed
    assert a.keys() == fp32.keys() and all(v.dtype == torch.float32 for v in a.values())
    assert any(not torch.equal(a[k], fp32[k]) for k in a)  # the products really ran in bf16
    losses = [e["mean_loss"] for e in first["progress"]["epoch_losses"]]
    assert losses[-1] < losses[0]


def test_a_bf16_state_is_not_resumed_on_hardware_that_trains_in_fp32(setup, monkeypatch):
    def interrupt(progress):
        if progress.step == 6:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "native_bf16", lambda device: True)
    with pytest.raises(KeyboardInterrupt):
        run(setup, "moved", on_step=interrupt, training=BF16)
    monkeypatch.setattr(loop, "native_bf16", lambda device: False)  # the same config elsewhere
    steps = []
    meta = run(setup, "moved", on_step=lambda p: steps.append(p.step), training=BF16)
    assert steps[0] == 1 and meta["precision"] == "fp32"  # started over, all in fp32
    assert_same_weights(weights(setup, "moved"), weights(setup, "a"))


def test_native_bf16_reads_the_hardware(monkeypatch):
    hardware.native_bf16.cache_clear()
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert hardware.native_bf16(torch.device("cpu"))
    hardware.native_bf16.cache_clear()
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert not hardware.native_bf16(torch.device("cpu"))
    hardware.native_bf16.cache_clear()


def test_deebert_second_stage_starts_from_the_finetune_run(setup, reference):
    root, backbone = setup
    donor = finetune(
        RunSpec(
            root / "data", root / "ft" / "model", backbone, {"recipe": "finetune"}, TRAINING,
            0, "cpu", 1, state_dir=root / "ft" / "state",
        )
    )  # fmt: skip
    deebert = finetune(
        RunSpec(
            root / "data", root / "dee" / "model", backbone,
            {"recipe": "deebert", "exit_layers": "all"}, TRAINING, 0, "cpu", 1,
            state_dir=root / "dee" / "state", first_stage=root / "ft" / "model",
        )
    )  # fmt: skip
    assert donor["progress"]["epoch_losses"][0]["stage"] == "single-exit"
    assert {e["stage"] for e in deebert["progress"]["epoch_losses"]} == {"deebert-2-highways"}
    assert deebert["first_stage_from"] == str(root / "ft" / "model")
    ft, dee = weights(setup, "ft"), weights(setup, "dee")
    encoder = [k for k in ft if k.startswith("encoder.")]
    assert encoder and all(torch.equal(ft[k], dee[k]) for k in encoder)  # frozen, bit for bit
    for part in ("poolers", "classifiers"):  # the final head is the donor's only head
        for name in ("dense.weight", "weight"):
            if f"{part}.0.{name}" in ft:
                assert torch.equal(ft[f"{part}.0.{name}"], dee[f"{part}.2.{name}"])
    # the highways were trained: the internal exits now beat chance on the training data
    assert deebert["progress"]["epoch_losses"][-1]["mean_loss"] < np.log(3) * 2


def test_a_first_stage_from_a_multi_exit_run_is_refused(setup, reference):
    root, backbone = setup
    with pytest.raises(DataError, match="a first stage needs one pooler exit at layer 3"):
        finetune(
            RunSpec(
                root / "data", root / "bad" / "model", backbone,
                {"recipe": "deebert", "exit_layers": "all"}, TRAINING, 0, "cpu", 1,
                state_dir=root / "bad" / "state", first_stage=root / "a" / "model",
            )
        )  # fmt: skip


@pytest.mark.parametrize("schedule", ["linear", "constant"])
def test_the_schedule_is_a_training_setting(schedule):
    model = torch.nn.Linear(2, 2)
    stage = Stage("s", None, epochs=1, learning_rate=0.1)
    settings = TrainingSettings(1, 2, 0.1, weight_decay=0.0, warmup_ratio=0.1, schedule=schedule)
    optimizer, scheduler = make_optimizer(model, stage, settings, total_steps=10)
    lrs = []
    for _ in range(10):
        optimizer.step()
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    if schedule == "constant":  # Sledgehammer: no warmup, no decay
        assert lrs == [0.1] * 10
    else:  # warmup over 1 step, then linear decay to 0
        assert lrs[0] == pytest.approx(0.1) and lrs[-1] == 0.0 and lrs == sorted(lrs, reverse=True)
