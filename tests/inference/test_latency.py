import numpy as np
import pandas as pd
import pytest

from early_exit.exits.operating_points import (
    load_sweeps,
    operating_points,
    write_operating_points,
)
from early_exit.exits.sweep import sweep_file
from early_exit.inference.engine import EarlyExitEngine
from early_exit.inference.latency import (
    FULL,
    ORT,
    TORCH,
    LatencySettings,
    architecture,
    full_depth_check,
    interleaved,
    latency_file,
    other_knobs,
    time_runs,
)
from early_exit.support.errors import DataError

COLUMNS = [
    "task", "method", "seed", "chosen_on_dev", "engine", "policy", "knob", "batch_size",
    "examples", "repeats", "examples_per_s", "ms_per_example", "ms_min", "ms_max",
    "measured_speedup", "speedup_min", "speedup_max", "layer_speedup", "ratio",
    "time_vs_torch", "device", "threads", "architecture", "full_depth_spread",
    "full_depth_disagrees",
]  # fmt: skip


def test_rounds_alternate_the_order_of_the_settings():
    order = []
    passes = {name: (lambda name=name: order.append(name)) for name in ("full", "a", "b")}
    seconds = interleaved(passes, repeats=4, warmup=2)
    assert order == ["full", "full"] + ["full", "a", "b", "b", "a", "full"] * 2
    assert set(seconds) == {"full", "a", "b"} and all(len(s) == 4 for s in seconds.values())
    assert all((s > 0).all() for s in seconds.values())


def test_speed_ups_are_paired_within_rounds():
    """A machine that slows down twofold halfway moves every setting alike: the per-round
    speed-up stays exact although the times spread."""
    clock = {"now": 0.0, "passes": 0}
    passes = {}
    for name, cost in (("full", 2.0), ("knob", 1.0)):

        def run(cost=cost):
            clock["now"] += cost * (1 if clock["passes"] < 4 else 2)
            clock["passes"] += 1

        passes[name] = run
    seconds = interleaved(passes, repeats=4, clock=lambda: clock["now"])
    np.testing.assert_array_equal(seconds["full"] / seconds["knob"], [2, 2, 2, 2])
    assert seconds["full"].max() == 2 * seconds["full"].min()


def test_other_knobs_pick_a_faster_and_a_slower_setting():
    dev = pd.DataFrame({"threshold": [0.0, 0.2, 0.4, 0.6, 0.8], "speedup": [1, 1.5, 2, 3, 4]})
    assert other_knobs(dev, 0.4) == [0.6, 0.2]  # halfway to 4 (3.0), halfway to 1 (1.5)
    assert other_knobs(dev, 0.8) == [0.6, 0.4]  # nothing faster: 3.0 and halfway to 1 (2.5)


def test_latency_table_at_the_knob_chosen_on_dev(runs, tmp_path):
    run, data_dir = runs["pabee"]
    run_key = {"task": "cls", "method": "pabee", "seed": 0}
    policies = {"patience": {"values": "all"}}
    sweep_file(run / "exit_logits.npz", run / "sweep.tsv", policies, None, run_key)
    chosen = operating_points(load_sweeps([run / "sweep.tsv"]), 0.01).threshold.iloc[0]
    points = tmp_path / "operating_points.tsv"  # as rule operating_points writes it
    write_operating_points([run / "sweep.tsv"], 0.01, points)
    settings = LatencySettings(examples=16, warmup=0, repeats=2, batch_sizes=(1, 8))
    out = tmp_path / "latency.tsv"
    latency_file(run, data_dir, out, "patience", run_key, points, settings, "cpu", 1)
    both = pd.read_csv(out, sep="\t")
    assert list(both.columns) == COLUMNS
    # both engines, every setting and batch size
    assert len(both) == 2 * 2 * 4 and set(both.engine) == {TORCH, ORT}
    ort, table = both[both.engine == ORT], both[both.engine == TORCH]
    assert (table.time_vs_torch == 1).all() and (ort.time_vs_torch > 0).all()
    assert (ort.device == "CPUExecutionProvider").all()
    # the same knobs and the same exits: the layer speed-ups agree (fp32, near-knob aside)
    np.testing.assert_array_equal(ort.knob, table.knob)
    np.testing.assert_allclose(ort.layer_speedup, table.layer_speedup, rtol=0.05)
    assert len(table) == 2 * 4 and set(table.batch_size) == {1, 8}
    full = table[table.policy == FULL]
    assert (full.measured_speedup == 1).all() and (full.layer_speedup == 1).all()
    assert table[table.chosen_on_dev].knob.tolist() == [chosen, chosen]
    assert (table.ms_min <= table.ms_per_example).all()
    assert (table.ms_per_example <= table.ms_max).all()
    # the spread of the speed-up itself, over rounds: brackets the median, 1 at full depth
    assert (table.speedup_min <= table.measured_speedup).all()
    assert (table.measured_speedup <= table.speedup_max).all()
    assert (full.speedup_min == 1).all() and (full.speedup_max == 1).all()
    assert (table.repeats == 2).all()
    # one run alone: no peer to disagree with
    assert (table.full_depth_spread == 1).all() and not table.full_depth_disagrees.any()
    assert table.architecture.str.match(r"BertModel, 4 layers, \d+ parameters").all()
    np.testing.assert_allclose(table.ratio, table.measured_speedup / table.layer_speedup)
    assert (both.threads == 1).all() and (table.device == "cpu").all()
    # patience t exits no earlier than exit t+1: the layer speed-up is bounded by L/(t+1)
    timed = table[table.policy == "patience"]
    assert (timed.layer_speedup <= 4 / (timed.knob + 1) + 1e-9).all()


def test_a_run_without_an_operating_point_is_named(runs, tmp_path):
    run, data_dir = runs["pabee"]
    run_key = {"task": "cls", "method": "pabee", "seed": 0}
    sweep_file(run / "exit_logits.npz", run / "sweep.tsv", {"patience": {}}, None, run_key)
    points = tmp_path / "operating_points.tsv"
    write_operating_points([run / "sweep.tsv"], 0.01, points)
    other = {**run_key, "seed": 1}
    with pytest.raises(DataError, match="no operating point for .*'seed': 1.* under patience"):
        latency_file(run, data_dir, tmp_path / "l.tsv", "patience", other, points, device="cpu")


def test_one_job_times_every_run_and_writes_each_table(runs, tmp_path):
    """The workflow's latency job: several runs in one process, one table per run."""
    policies = {"pabee": "patience", "joint": "entropy"}
    sweeps = {"patience": {"patience": {}}, "entropy": {"entropy": {"num_thresholds": 5}}}
    timed, outs = [], []
    for method, policy in policies.items():
        run, data_dir = runs[method]
        run_key = {"task": "cls", "method": method, "seed": 0}
        sweep_file(run / "exit_logits.npz", run / "sweep.tsv", sweeps[policy], None, run_key)
        timed.append({"run_dir": run, "data_dir": data_dir, "policy": policy, "run_key": run_key})
        outs.append(tmp_path / f"{method}.tsv")
    points = tmp_path / "operating_points.tsv"
    write_operating_points([r["run_dir"] / "sweep.tsv" for r in timed], 0.01, points)
    settings = LatencySettings.from_config(
        {"examples": 8, "warmup": 0, "repeats": 1, "batch_sizes": [4], "onnxruntime": False}
    )
    time_runs(timed, outs, points, settings, "cpu", 1)
    spreads = []
    for out, (method, policy) in zip(outs, policies.items(), strict=True):
        table = pd.read_csv(out, sep="\t")
        assert set(table.method) == {method}
        assert set(table.policy) == {FULL, policy} and set(table.engine) == {TORCH}
        spreads.append(table.full_depth_spread.to_numpy())
    # the two runs share an architecture: both tables carry the same full-depth spread
    np.testing.assert_array_equal(*spreads)
    assert (spreads[0] >= 1).all()


def synthetic(
    method, full_ms, architecture="BertModel, 6 layers, 100 parameters", task="t", engine=TORCH
):
    rows = []
    for batch_size, ms in ((1, full_ms), (32, full_ms / 3)):
        rows.append({"policy": FULL, "batch_size": batch_size, "ms_per_example": ms})
        rows.append({"policy": "entropy", "batch_size": batch_size, "ms_per_example": ms / 2})
    table = pd.DataFrame(rows)
    table.insert(0, "task", task)
    table.insert(1, "method", method)
    table.insert(2, "seed", "13")
    table.insert(3, "engine", engine)
    table["architecture"] = architecture
    return table


def test_runs_of_one_architecture_that_disagree_at_full_depth_are_flagged(caplog):
    tables = [
        synthetic("deebert", 10.0),
        synthetic("pabee", 10.5),  # within 10% of deebert
        synthetic("berxit", 12.0),  # 20% slower than deebert: flagged with both peers
        synthetic("costeff", 5.0, "BertModel, 6 layers, 50 parameters"),  # pruned: alone
        synthetic("other-task", 20.0, task="u"),  # another task: not compared
    ]
    with caplog.at_level("WARNING"):
        checked = full_depth_check(tables, tolerance=0.1)
    for table in checked[:3]:
        np.testing.assert_allclose(table.full_depth_spread, 1.2)
        assert table.full_depth_disagrees.all()
    for table in checked[3:]:
        assert (table.full_depth_spread == 1).all() and not table.full_depth_disagrees.any()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2  # batch sizes 1 and 32 of task t
    assert "deebert seed 13 10.00, pabee seed 13 10.50, berxit seed 13 12.00" in warnings[0]
    assert "1.20 > 1 + tolerance 0.10" in warnings[0]
    relaxed = full_depth_check(tables, tolerance=0.25)
    assert not any(t.full_depth_disagrees.any() for t in relaxed)


def test_each_engine_is_checked_against_its_own_full_depth():
    """One run's table holds both engines: ONNX Runtime being faster than torch is not a
    disagreement, two runs' ONNX Runtime times that differ are."""

    def run(method, torch_ms, ort_ms):
        return pd.concat([synthetic(method, torch_ms), synthetic(method, ort_ms, engine=ORT)])

    checked = full_depth_check([run("deebert", 10.0, 6.0), run("pabee", 10.4, 6.2)], 0.1)
    assert not any(t.full_depth_disagrees.any() for t in checked)
    checked = full_depth_check([run("deebert", 10.0, 6.0), run("pabee", 10.4, 8.0)], 0.1)
    for table in checked:
        assert table.full_depth_disagrees.tolist() == [False] * 4 + [True] * 4  # ORT rows


def test_a_layer_mix_model_is_its_own_architecture(runs):
    """Sledgehammer's full depth runs a pooler after every layer: not compared with the
    other full-width models of its task."""
    mix = architecture(EarlyExitEngine.from_run(runs["sledgehammer"][0], device="cpu").model)
    plain = architecture(EarlyExitEngine.from_run(runs["pabee"][0], device="cpu").model)
    assert mix == plain + ", layer-mix heads"
