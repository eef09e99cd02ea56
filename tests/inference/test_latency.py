import numpy as np
import pandas as pd
import pytest

from early_exit.exits.operating_points import (
    load_sweeps,
    operating_points,
    write_operating_points,
)
from early_exit.exits.sweep import sweep_file
from early_exit.inference.latency import FULL, latency_file, other_knobs, time_runs
from early_exit.support.errors import DataError

COLUMNS = [
    "task", "method", "seed", "chosen_on_dev", "policy", "knob", "batch_size", "examples",
    "repeats", "examples_per_s", "ms_per_example", "ms_min", "ms_max", "measured_speedup",
    "layer_speedup", "ratio", "device", "threads",
]  # fmt: skip


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
    settings = {"examples": 16, "warmup": 0, "repeats": 2, "batch_sizes": [1, 8]}
    out = tmp_path / "latency.tsv"
    latency_file(run, data_dir, out, "patience", run_key, points, settings, "cpu", 1)
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == COLUMNS
    assert len(table) == 2 * 4 and set(table.batch_size) == {1, 8}
    full = table[table.policy == FULL]
    assert (full.measured_speedup == 1).all() and (full.layer_speedup == 1).all()
    assert table[table.chosen_on_dev].knob.tolist() == [chosen, chosen]
    assert (table.ms_min <= table.ms_per_example).all()
    assert (table.ms_per_example <= table.ms_max).all()
    np.testing.assert_allclose(table.ratio, table.measured_speedup / table.layer_speedup)
    assert (table.threads == 1).all() and (table.device == "cpu").all()
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
        latency_file(run, data_dir, tmp_path / "l.tsv", "patience", other, points, {}, "cpu", 1)


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
    settings = {"examples": 8, "warmup": 0, "repeats": 1, "batch_sizes": [4]}
    time_runs(timed, outs, points, settings, "cpu", 1)
    for out, (method, policy) in zip(outs, policies.items(), strict=True):
        table = pd.read_csv(out, sep="\t")
        assert set(table.method) == {method}
        assert set(table.policy) == {FULL, policy}
