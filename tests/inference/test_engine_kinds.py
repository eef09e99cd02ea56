"""Every kind of model the workflow produces exits, in both engines, where the sweep says.

One tiny run per kind: exit heads with their own pooler (joint), one shared pooler (PABEE),
a layer mix (Sledgehammer), a learned gate (BERxiT, classification and regression),
width-pruned (COST-EFF, slenderized from a fine-tuned teacher), loaded from an ElasticBERT
checkpoint (fnlp layout), and a regression model with a shared pooler (PABEE). Dev and test
have 96 examples of 2 to 8 words each, so batch size 32 runs three batches of mixed
lengths; every third example mixes in words of other topics and every sixth has a wrong
label, so that knobs split the examples (some exit early, some do not) instead of sending
all or none out. For every runtime policy the model can use, the torch engine and the ONNX
Runtime engine (its export) must match the sweep on stored logits example by example; near-knob
exemptions (tests/helpers/exactness.py) are bounded (at most 1% of the decisions), and
early exits are checked knob by knob, not summed over the grid.
"""

import json

import numpy as np
import pytest
from exactness import Comparison, compare_with_sweep
from tiny import (
    TINY_SLENDERIZE,
    WORDS,
    fnlp_checkpoint,
    make_examples,
    make_tiny_bert,
    tiny_training,
)

from early_exit.data.prepare import prepare_task
from early_exit.exits.calibration import calibrate_file
from early_exit.exits.policies import Outputs, get_policy
from early_exit.exits.stored import load_exit_logits
from early_exit.exits.sweep import sweep_file
from early_exit.inference.engine import EarlyExitEngine
from early_exit.inference.onnx_export import export_run
from early_exit.inference.ort_engine import OrtEngine
from early_exit.inference.predict import predict
from early_exit.inference.run_facts import runtime_policies
from early_exit.runners.finetune import finetune
from early_exit.runners.slenderize import slenderize
from early_exit.runners.spec import RunSpec

TRAINING = tiny_training(
    epochs=3, learning_rate=1e-2, weight_decay=0.01, warmup_ratio=0.1, bucket_batches=2
)
EVAL = 96  # examples per evaluation split: three batches of 32
KINDS = {  # name: (task, backbone, method)
    "pooler": ("cls", "bert", {"recipe": "joint", "exit_layers": "all"}),
    "shared-pooler": ("cls", "bert", {"recipe": "pabee", "exit_layers": "all"}),
    "layer-mix": ("cls", "bert", {"recipe": "sledgehammer", "exit_layers": [1, 2, 4]}),
    "gated": ("cls", "bert", {"recipe": "berxit", "exit_layers": "all"}),
    "gated-regression": ("reg", "bert", {"recipe": "berxit", "exit_layers": "all"}),
    "shared-pooler-regression": ("reg", "bert", {"recipe": "pabee", "exit_layers": "all"}),
    "elasticbert": ("cls", "elastic", {"recipe": "elasticbert", "exit_layers": "all"}),
    "pruned": ("cls", "bert", None),  # COST-EFF: slenderized from the `finetune` teacher
}


def write_task(root, name, regression):
    files = {}
    for split, n, seed in (("train", 120, 0), ("dev", EVAL, 1), ("test", EVAL, 2)):
        examples = make_examples(n, seed=seed)
        rng = np.random.default_rng(100 + seed)
        for ex in examples[::3]:  # every third example: half its words from any topic, so
            words = ex["text"].split()  # confidence varies and knobs split the examples
            for j in range(0, len(words), 2):
                words[j] = WORDS[int(rng.integers(len(WORDS)))]
            ex["text"] = " ".join(words)
        for ex in examples[1::6]:  # and some wrong labels, so that no exit is always right
            ex["label"] = (ex["label"] + 1) % 3  # (calibration would sharpen it to certainty)
        if regression:  # a score that grows with the class, plus a little noise
            rng = np.random.default_rng(seed)
            for ex in examples:
                ex["label"] = round(float(ex["label"] + rng.normal(0, 0.2)), 3)
        files[split] = root / f"{name}-{split}.jsonl"
        files[split].write_text("".join(json.dumps(ex) + "\n" for ex in examples))
    spec = {"source": {"type": "files", "format": "jsonl", **{k: str(v) for k, v in files.items()}}}
    spec |= {"max_length": 12, "type": "regression" if regression else "classification"}
    prepare_task(name, spec, root / "data" / name, seed=0)
    return root / "data" / name


def finish(run, data):
    predict(run / "model", data, run / "exit_logits.npz", device="cpu", threads=1)
    calibrate_file(run / "exit_logits.npz", run / "calibration.json")
    return run


@pytest.fixture(scope="module")
def kinds(tmp_path_factory):
    """name -> (run directory, data directory, export directory), as the workflow lays
    them out."""
    root = tmp_path_factory.mktemp("kinds")
    fnlp_checkpoint(root / "elastic", layers=4)
    backbones = {
        "bert": {"name": str(make_tiny_bert(root / "bert", num_layers=4)), "pooling": "mean"},
        "elastic": {"name": str(root / "elastic"), "format": "elasticbert", "pooling": "cls"},
    }
    data = {"cls": write_task(root, "cls", False), "reg": write_task(root, "reg", True)}
    out = {}
    for name, (task, backbone, method) in KINDS.items():
        run = root / "results" / task / name / "seed0"
        if method is None:  # COST-EFF from a fine-tuned teacher
            teacher = root / "results" / task / "finetune" / "seed0" / "model"
            spec = RunSpec(
                data[task], teacher, backbones[backbone], {"recipe": "finetune"}, TRAINING,
                0, "cpu", 1, teacher.parent / "state",
            )  # fmt: skip
            finetune(spec)
            method = {"recipe": "costeff", "teacher": "finetune", "slenderize": TINY_SLENDERIZE}
            spec = RunSpec(
                data[task], run / "model", backbones[backbone], method, TRAINING, 0, "cpu", 1,
                teacher=teacher,
            )  # fmt: skip
            slenderize(spec)
        else:
            spec = RunSpec(
                data[task], run / "model", backbones[backbone], method, TRAINING, 0, "cpu", 1,
                run / "state",
            )  # fmt: skip
            finetune(spec)
        finish(run, data[task])
        out[name] = (run, data[task], export_run(run, root / "exports" / name))
    return out


def test_the_fixture_has_every_kind_several_batches_and_mixed_lengths(kinds):
    cfgs = {
        n: json.loads((r / "model" / "exit_config.json").read_text())
        for n, (r, *_) in kinds.items()
    }
    text = json.dumps(cfgs)
    for word in ("shared_pooler", "layer_mix", "lte", "elasticbert", "pruned"):
        assert word in text or any(
            word in (r / "model" / "config.json").read_text() for r, *_ in kinds.values()
        ), word
    stored = load_exit_logits(kinds["pooler"][0] / "exit_logits.npz")
    assert len(stored["test_labels"]) == EVAL and EVAL > 2 * 32
    assert len(np.unique(stored["test_lengths"])) >= 4


@pytest.mark.parametrize("engine_kind", ["torch", "ort"])
@pytest.mark.parametrize("name", list(KINDS))
def test_every_kind_exits_where_the_sweep_says(kinds, name, engine_kind):
    run, data_dir, export = kinds[name]
    torch_engine = EarlyExitEngine.from_run(run, device="cpu")
    engine = torch_engine if engine_kind == "torch" else OrtEngine.from_dir(export)
    policies = runtime_policies(torch_engine)
    assert ("learned" in policies) == name.startswith("gated")
    for policy in policies:
        total = Comparison()
        for split in ("dev", "test"):
            total += compare_with_sweep(engine, run, data_dir, split, policy, 32)
        what = f"{engine_kind} {name} {policy}"
        print(
            f"{what}: {total.decisions} decisions, {total.tolerated} near-knob differences "
            f"tolerated, early exits per knob {total.engine_early}"
        )
        # scores that vary continuously split the examples at some knob; patience on
        # exits that always agree, and a tiny gate whose outputs bunch between two grid
        # values, may not (their knobs are still checked one by one)
        mixed = policy in ("entropy", "confidence")
        total.check(what, n_examples=2 * EVAL if mixed else None)


def test_the_gated_regression_model_learned_a_gate_the_sweep_can_use(kinds, tmp_path):
    """BERxiT on regression, through the sweep: the gate's stored scores lie in (0, 1), the
    sweep writes learned rows (the released knob 0.005 among them) next to patience, and the
    learned grid spans never-early to all-at-the-first-exit on them."""
    run = kinds["gated-regression"][0]
    policies = {
        "patience": {"values": "all", "tau": 0.1},
        "learned": {"num_thresholds": 11, "include": [0.005]},
    }
    table = sweep_file(
        run / "exit_logits.npz", tmp_path / "sweep.tsv", policies, None,
        {"task": "reg", "method": "berxit", "seed": 0}, run / "calibration.json",
    )  # fmt: skip
    learned = table[table.policy == "learned"]
    assert set(learned.split) == {"dev", "test"} and set(table.policy) == {"patience", "learned"}
    assert np.isclose(learned.threshold, 0.005).any()
    stored = load_exit_logits(run / "exit_logits.npz")
    scores = stored["dev_scores"]
    assert scores.shape == stored["dev_logits"].shape[:2]
    assert ((scores > 0) & (scores < 1)).all()
    out = Outputs(stored["dev_logits"], stored["dev_labels"], "regression", scores=scores)
    grid, exits = get_policy("learned").decide(out, {"num_thresholds": 11, "include": [0.005]})
    assert (exits[0] == scores.shape[1] - 1).all() and (exits[-1] == 0).all()


# Batch size 1 for the kinds that no other exactness test runs one row at a time (pooler,
# shared pooler, layer mix, gated and pruned models are: tests/inference/test_engine.py and
# test_ort_engine.py); the test split, every runtime policy.
@pytest.mark.parametrize(
    "name,engine_kind",
    [
        ("pruned", "torch"),
        ("elasticbert", "torch"),
        ("elasticbert", "ort"),
        ("gated-regression", "torch"),
        ("gated-regression", "ort"),
    ],
)
def test_one_row_at_a_time_too(kinds, name, engine_kind):
    run, data_dir, export = kinds[name]
    torch_engine = EarlyExitEngine.from_run(run, device="cpu")
    engine = torch_engine if engine_kind == "torch" else OrtEngine.from_dir(export)
    for policy in runtime_policies(torch_engine):
        total = compare_with_sweep(engine, run, data_dir, "test", policy, 1)
        total.check(f"{engine_kind} {name} {policy} batch 1")
