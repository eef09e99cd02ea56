"""`early-exit export` and the ONNX Runtime engine: the exported graphs exit exactly where
the sweep, from the stored logits, says the model would; bad exports are named.

The exactness check is the torch engine's (tests/helpers/exactness.py, the same near-knob
tolerance): for every runtime policy the model can use, at batch sizes 1 and 32, on
pooler, shared-pooler (PABEE), layer-mix (Sledgehammer), gated (BERxiT), pruned
(COST-EFF, slenderized) and regression models; the counts are printed.
"""

import io
import json
import shutil
import sys

import numpy as np
import onnx
import pytest
import torch
from exactness import Comparison, compare_with_sweep
from tiny import TINY_SLENDERIZE, tiny_training

from early_exit.cli import main
from early_exit.data.prepared import load_split
from early_exit.exits.calibration import calibrate_file
from early_exit.exits.stored import load_exit_logits
from early_exit.inference.engine import EarlyExitEngine
from early_exit.inference.onnx_export import MANIFEST, export_model, export_run
from early_exit.inference.ort_engine import OrtEngine
from early_exit.inference.predict import predict
from early_exit.inference.run_facts import runtime_policies
from early_exit.modeling.checkpoint import load_model_dir
from early_exit.runners.finetune import finetune
from early_exit.runners.slenderize import slenderize
from early_exit.runners.spec import RunSpec
from early_exit.support.errors import ConfigError, DataError
from early_exit.training.batching import encode

TRAINING = tiny_training(
    epochs=2, learning_rate=1e-2, weight_decay=0.01, warmup_ratio=0.1, bucket_batches=2
)
MODELS = ("joint", "pabee", "sledgehammer", "berxit", "costeff", "pabee-regression")


@pytest.fixture(scope="module")
def costeff(runs, tmp_path_factory):
    """A slenderized (COST-EFF) run on the tiny classification task, as the workflow lays it out."""
    _, data = runs["joint"]
    backbone = json.loads((runs["joint"][0] / "model" / "exit_config.json").read_text())
    backbone = {"name": backbone["backbone"]["name"], "pooling": "mean"}
    root = tmp_path_factory.mktemp("costeff") / "results" / "cls"
    teacher = root / "finetune" / "seed0" / "model"
    state = teacher.parent / "state"
    finetune(RunSpec(data, teacher, backbone, {"recipe": "finetune"}, TRAINING, 0, "cpu", 1, state))
    run = root / "costeff" / "seed0"
    method = {"recipe": "costeff", "teacher": "finetune", "slenderize": TINY_SLENDERIZE}
    spec = RunSpec(data, run / "model", backbone, method, TRAINING, 0, "cpu", 1, teacher=teacher)
    slenderize(spec)
    predict(run / "model", data, run / "exit_logits.npz", device="cpu", threads=1)
    calibrate_file(run / "exit_logits.npz", run / "calibration.json")
    return run, data


@pytest.fixture(scope="module")
def models(runs, costeff):
    return {**runs, "costeff": costeff}


@pytest.fixture(scope="module")
def exports(models, tmp_path_factory):
    """Every model exported once: name -> export directory."""
    root = tmp_path_factory.mktemp("exports")
    return {name: export_run(models[name][0], root / name) for name in MODELS}


@pytest.mark.parametrize("batch_size", [1, 32])
@pytest.mark.parametrize("name", MODELS)
def test_ort_engine_exits_where_the_sweep_says(models, exports, name, batch_size):
    run, data_dir = models[name]
    engine = OrtEngine.from_dir(exports[name])
    policies = runtime_policies(EarlyExitEngine.from_run(run, device="cpu"))
    assert policies  # every model has runtime policies; gated models the learned one too
    assert ("learned" in policies) == (name == "berxit")
    for policy in policies:
        total = Comparison()
        for split in ("dev", "test"):
            total += compare_with_sweep(engine, run, data_dir, split, policy, batch_size)
        print(
            f"ort {name} {policy} batch {batch_size}: {total.decisions} decisions, "
            f"{total.decisions - total.tolerated} equal to the sweep's, {total.tolerated} "
            f"near-knob differences tolerated, {total.early} early exits"
        )
        # exemptions at most 1% of the decisions; early exits as the sweep says, knob by knob
        total.check(f"ort {name} {policy} batch {batch_size}")


def test_full_depth_reproduces_the_stored_last_exit(models, exports):
    for name in ("sledgehammer", "costeff", "berxit"):
        run, data_dir = models[name]
        engine = OrtEngine.from_dir(exports[name])
        stored = load_exit_logits(run / "exit_logits.npz")["test_logits"]
        data = encode(load_split(data_dir, "test"), engine.tokenizer, engine.max_length)
        got = engine.run(data.features, None, batch_size=64)
        assert (got.exit_index == len(engine.exit_layers) - 1).all()
        np.testing.assert_allclose(got.logits, stored[:, -1], atol=1e-5)


def test_the_batch_shrinks_as_rows_exit(models, exports, monkeypatch):
    """Exited rows are not carried through later layers (as in the torch engine)."""
    run, data_dir = models["joint"]
    engine = OrtEngine.from_dir(exports["joint"])
    data = encode(load_split(data_dir, "dev"), engine.tokenizer, engine.max_length)
    seen, call = [], engine.backend._call

    def counting(key, session, **arrays):
        if key.startswith("layer"):
            seen.append(len(arrays["hidden"]))
        return call(key, session, **arrays)

    monkeypatch.setattr(engine.backend, "_call", counting)
    from early_exit.exits.policies.entropy import entropy

    stored = load_exit_logits(run / "exit_logits.npz")["dev_logits"]
    knob = float(np.median(entropy(stored[:, 0])))
    got = engine.run(data.features, engine.policy("entropy", knob), batch_size=32)
    taken = np.array(engine.exit_layers)[got.exit_index]
    assert 1 < taken.mean() < 4
    assert sum(seen) == taken.sum()


def test_the_export_has_dynamic_axes_tokenizer_temperatures_and_a_card(models, exports):
    out = exports["sledgehammer"]
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["layers"] == [f"layer_{n}.onnx" for n in (1, 2, 3, 4)]
    assert manifest["exits"] == ["exit_1.onnx", "exit_2.onnx", "exit_4.onnx"]
    assert manifest["mix"] == "mix.onnx" and not manifest["gate"]
    graph = onnx.load(str(out / "layer_2.onnx")).graph
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
            for i in graph.input}  # fmt: skip
    assert dims["hidden"][:2] == ["batch", "sequence"] and dims["attention_mask"] == [
        "batch",
        "sequence",
    ]
    assert (out / "tokenizer" / "tokenizer_config.json").is_file()
    engine = OrtEngine.from_dir(out)
    torch_engine = EarlyExitEngine.from_run(models["sledgehammer"][0], device="cpu")
    np.testing.assert_array_equal(engine.temperatures, torch_engine.temperatures)
    np.testing.assert_allclose(engine.flops_polynomial(), torch_engine.flops_polynomial())
    card = engine.card
    assert "cls" in card and "exits after layers 1, 2, 4" in card
    assert "Not measured: the run has no latency table" in card
    gated = json.loads((exports["berxit"] / MANIFEST).read_text())
    assert gated["gate"] and gated["mix"] is None
    pruned = json.loads((exports["costeff"] / MANIFEST).read_text())
    assert pruned["pruned_shapes"]["heads"] == [2, 2, 2, 2]
    assert (
        pruned["num_parameters"]
        < json.loads((exports["joint"] / MANIFEST).read_text())["num_parameters"]
    )


def test_operating_points_and_speed_ups_come_from_the_run(models, tmp_path):
    """With a sweep, the export records the knob `threshold="auto"` gives the torch engine,
    and its test scores; with a latency table, the measured speed-ups and the machine."""
    from early_exit.exits.sweep import sweep_file

    run = tmp_path / "results" / "cls" / "joint" / "seed0"
    shutil.copytree(models["joint"][0], run)
    policies = {"entropy": {"num_thresholds": 11}, "patience": {"values": "all"}}
    labels = {"task": "cls", "method": "joint", "seed": 0}
    sweep_file(run / "exit_logits.npz", run / "sweep.tsv", policies, None, labels,
               run / "calibration.json")  # fmt: skip
    header = "task\tmethod\tseed\tchosen_on_dev\tpolicy\tknob\tbatch_size\tms_per_example"
    header += "\tmeasured_speedup\tlayer_speedup\tratio\tdevice\tthreads\n"
    rows = "cls\tjoint\t0\tFalse\tfull\t\t1\t2.0\t1.0\t1.0\t1.0\tcpu\t2\n"
    rows += "cls\tjoint\t0\tTrue\tentropy\t0.5\t1\t1.0\t2.0\t2.5\t0.8\tcpu\t2\n"
    (run / "latency.tsv").write_text(header + rows)
    out = export_run(run, tmp_path / "export")
    torch_engine = EarlyExitEngine.from_run(run, device="cpu")
    engine = OrtEngine.from_dir(out)
    for policy in ("entropy", "patience"):
        assert engine.operating_point(policy) == torch_engine.operating_point(policy)
        assert engine.policy(policy, "auto").knob == torch_engine.policy(policy, "auto").knob
        assert engine.points[policy]["test_score_full"] > 0
    assert engine.operating_point("entropy", max_drop=0.5) == torch_engine.operating_point(
        "entropy", max_drop=0.5
    )
    with pytest.raises(ConfigError, match="confidence"):  # not in the sweep: no point recorded
        engine.policy("confidence", "auto")
    card = engine.card
    assert "the run's sweep.tsv (max_drop 0.01)" in card
    assert "| entropy | 0.500 | 1 | 1.000 | 2.000 | 2.500 | 0.800 |" in card
    assert "device cpu, threads 2" in card


def test_predict_on_an_export_answers_as_the_torch_engine(models, exports, capsys, monkeypatch):
    run, _ = models["berxit"]
    texts = ["market shares bank", "film music star award", "goal match team player win"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("\n".join(texts).encode())))
    argv = ["--policy", "learned", "--threshold", "0.5", "--batch-size", "2"]
    assert main(["predict", str(exports["berxit"]), *argv]) == 0
    out, err = capsys.readouterr()
    got = [json.loads(line) for line in out.splitlines()]
    want = EarlyExitEngine.from_run(run, device="cpu").classify(texts, "learned", 0.5, batch_size=2)
    assert "3 answers" in err
    for g, w in zip(got, want, strict=True):
        assert (g["label"], g["exit_layer"], g["score_name"]) == (
            w.label,
            w.exit_layer,
            w.score_name,
        )
        assert g["flops"] == pytest.approx(w.flops) and g["score"] == pytest.approx(
            w.score, abs=1e-5
        )


def test_the_learned_policy_needs_an_export_with_a_gate(exports):
    engine = OrtEngine.from_dir(exports["joint"])
    with pytest.raises(ConfigError, match="needs per-exit scores .* this export has none"):
        engine.classify(["market"], policy="learned", threshold=0.5)


# ----------------------------------------------------------------------------- bad input


def cli(capsys, argv):
    code = main(argv)
    _, err = capsys.readouterr()
    return code, err


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("early-exit: error: "), err
    return err


def test_export_cli_writes_a_directory_predict_detects(models, tmp_path, capsys):
    out = tmp_path / "exported"
    code, err = cli(capsys, ["export", str(models["pabee"][0]), str(out)])
    assert code == 0 and "exported 9 ONNX graphs" in err  # embeddings, 4 layers, 4 exits
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported"]  # no temporary left
    assert isinstance(json.loads((out / MANIFEST).read_text())["files"], dict)


def test_export_of_a_directory_that_is_not_a_trained_run(tmp_path, capsys):
    code, err = cli(capsys, ["export", str(tmp_path), str(tmp_path / "out")])
    assert code == 2 and "not a trained run" in one_line(err)
    assert not (tmp_path / "out").exists()


class Bessel(torch.nn.Module):
    def forward(self, x):
        return torch.special.bessel_j0(x)


def test_a_piece_that_cannot_be_exported_is_named_and_nothing_is_left(models, tmp_path):
    run = models["joint"][0]
    model, _, _ = load_model_dir(run / "model")
    layer = model.encoder.encoder.layer[1]
    layer.intermediate.intermediate_act_fn = Bessel()  # no ONNX operator
    engine = EarlyExitEngine.from_run(run, device="cpu")
    with pytest.raises(DataError, match=r"^layer 2: cannot be exported to ONNX .*bessel_j0"):
        export_model(model, engine, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []  # built in a temporary sibling, removed


def test_the_cli_names_an_unexportable_piece(models, tmp_path, capfd, monkeypatch):
    from early_exit.inference import onnx_export

    def broken(model_dir):
        model, tokenizer, meta = load_model_dir(model_dir)
        model.classifiers[2].forward = lambda x: torch.special.bessel_j0(x)  # no ONNX operator
        return model, tokenizer, meta

    monkeypatch.setattr(onnx_export, "load_model_dir", broken)
    code = main(["export", str(models["joint"][0]), str(tmp_path / "out")])
    out, err = capfd.readouterr()  # file descriptors: the exporter writes from C++
    assert code == 2 and "exit after layer 3: cannot be exported" in one_line(err)
    assert out == ""  # no graph dump
    assert list(tmp_path.iterdir()) == []


def test_a_failed_export_leaves_the_previous_one_whole(models, exports, tmp_path, monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(exports["joint"], out)
    from early_exit.inference import onnx_export

    def fail(piece, path, opset):
        if piece.name == "layer 3":
            raise DataError("layer 3: cannot be exported to ONNX (test)")
        return export_piece(piece, path, opset)

    export_piece = onnx_export.export_piece
    monkeypatch.setattr(onnx_export, "export_piece", fail)
    with pytest.raises(DataError, match="layer 3"):
        export_run(models["joint"][0], out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    OrtEngine.from_dir(out)  # still complete: every checksum holds


def test_export_refuses_to_replace_a_directory_that_is_not_an_export(models, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    code, err = cli(capsys, ["export", str(models["joint"][0]), str(tmp_path)])
    assert code == 2 and "is not an ONNX export; refusing to replace it" in one_line(err)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda d: (d / "layer_2.onnx").write_bytes(b"\0" * 64), "layer_2.onnx: corrupt"),
        (lambda d: (d / "exit_3.onnx").unlink(), "exit_3.onnx: missing from the export"),
        (lambda d: (d / "tokenizer" / "tokenizer.json").unlink(), "tokenizer.json: missing"),
        (lambda d: (d / MANIFEST).unlink(), "an incomplete ONNX export \\(no export.json\\)"),
        (lambda d: (d / MANIFEST).write_text("{"), "not a readable export manifest"),
        (lambda d: (d / MANIFEST).write_text('{"format": "x"}'), "not an early-exit ONNX export"),
    ],
)
def test_a_corrupt_or_partial_export_is_named(exports, tmp_path, capsys, damage, message):
    out = tmp_path / "export"
    shutil.copytree(exports["joint"], out)
    damage(out)
    with pytest.raises(DataError, match=message):
        OrtEngine.from_dir(out)
    code, err = cli(capsys, ["predict", str(out), "--threshold", "0.5"])
    assert code == 2 and one_line(err)


def test_an_export_whose_graph_onnx_runtime_cannot_load_is_named(exports, tmp_path, capsys):
    """A damaged graph whose checksum was updated too (edited by hand): named by its file."""
    out = tmp_path / "export"
    shutil.copytree(exports["joint"], out)
    (out / "layer_2.onnx").write_bytes(b"not a graph")
    manifest = json.loads((out / MANIFEST).read_text())
    from early_exit.support.atomic import sha256_file

    manifest["files"]["layer_2.onnx"] = sha256_file(out / "layer_2.onnx")
    (out / MANIFEST).write_text(json.dumps(manifest))
    code, err = cli(capsys, ["predict", str(out), "--threshold", "0.5"])
    assert code == 2 and "layer_2.onnx: ONNX Runtime cannot load it" in one_line(err)


def test_onnxruntime_missing(models, exports, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    code, err = cli(capsys, ["predict", str(exports["joint"]), "--threshold", "0.5"])
    assert code == 2 and "onnxruntime is not installed" in one_line(err)
    code, err = cli(capsys, ["export", str(models["joint"][0]), str(tmp_path / "out")])
    assert code == 2 and "onnxruntime is not installed" in one_line(err)
    assert not (tmp_path / "out").exists()
