"""The knob chosen on dev over every test example (inference.whole_split, in the latency
stage): the speed-up's interval, the rounds, and the stage on a tiny run, agreeing and not."""

import numpy as np
import pandas as pd
import pytest

from early_exit.exits.operating_points import load_sweeps, write_operating_points
from early_exit.exits.sweep import sweep_file
from early_exit.inference.engine import EarlyExitEngine
from early_exit.inference.latency import (
    FULL,
    ORT,
    TORCH,
    LatencySettings,
    latency_file,
    time_runs,
)
from early_exit.inference.whole_split import batch_rounds, speedup_interval
from early_exit.support.errors import DataError


def test_a_drifting_machine_moves_both_sides_of_a_round_alike():
    """Every round runs at its own speed (up to 3x apart), the knob always takes 40% of
    full depth's time: the measured speed-up is 2.5 with no spread, whatever the drift."""
    speed = np.array([1.0, 1.5, 3.0, 2.0, 1.2, 2.5])
    full = 0.2 * speed
    layers_full = np.full(6, 6 * 32.0)
    layers_knob = np.full(6, 2 * 32.0)  # layer speed-up 3
    got = speedup_interval(full, 0.4 * full, layers_full, layers_knob)
    assert got["measured_speedup"] == pytest.approx(2.5)
    assert got["speedup_lo"] == pytest.approx(2.5) and got["speedup_hi"] == pytest.approx(2.5)
    assert got["layer_speedup"] == pytest.approx(3.0)
    assert got["ratio"] == pytest.approx(2.5 / 3)
    assert got["ratio_lo"] == pytest.approx(2.5 / 3) and got["ratio_hi"] == pytest.approx(2.5 / 3)


def test_the_interval_is_the_bootstrap_of_the_ratio_of_sums_over_rounds():
    rng = np.random.default_rng(3)
    full = rng.uniform(0.1, 0.3, 14)
    knob = full / rng.normal(2.0, 0.3, 14)  # each round's own speed-up, around 2
    layers_full = np.full(14, 6 * 32.0)
    layers_knob = rng.uniform(50, 80, 14)
    got = speedup_interval(full, knob, layers_full, layers_knob)
    assert got["measured_speedup"] == pytest.approx(full.sum() / knob.sum())  # every example once
    assert got["speedup_lo"] < got["measured_speedup"] < got["speedup_hi"]
    assert got["speedup_hi"] - got["speedup_lo"] < 1.0
    # by hand: resampling rounds with the same generator gives the same interval
    idx = np.random.default_rng(0).integers(0, 14, (2000, 14))
    ratios = full[idx].sum(1) / knob[idx].sum(1)
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    assert got["speedup_lo"] == pytest.approx(lo, rel=0.02)
    assert got["speedup_hi"] == pytest.approx(hi, rel=0.02)
    # the same seed, the same interval (the times are the only thing that moves)
    assert speedup_interval(full, knob, layers_full, layers_knob) == got
    noisier = speedup_interval(full, full / rng.normal(2.0, 0.8, 14), layers_full, layers_knob)
    assert noisier["speedup_hi"] - noisier["speedup_lo"] > got["speedup_hi"] - got["speedup_lo"]


def test_one_round_has_no_interval():
    got = speedup_interval([0.3], [0.1], [192.0], [64.0])
    assert got["measured_speedup"] == pytest.approx(3.0) and got["ratio"] == pytest.approx(1.0)
    assert np.isnan([got["speedup_lo"], got["speedup_hi"], got["ratio_lo"]]).all()


class Recorder:
    """An engine stand-in that records which rows each pass saw, in which order."""

    def __init__(self, name, log):
        self.name, self.log = name, log

    def run(self, features, rule, batch_size):
        from early_exit.inference.engine import Decisions

        ids = [f["id"] for f in features]
        self.log.append((self.name, rule, tuple(ids)))
        n = len(ids)
        exit_index = np.full(n, 0 if rule else 5)
        return Decisions(exit_index, np.array(ids, np.float32)[:, None], np.zeros(n))


def test_every_example_once_per_repeat_in_length_sorted_batches_alternating():
    log = []
    engines = {"a": Recorder("a", log), "b": Recorder("b", log)}
    lengths = [5, 2, 9, 2, 7, 3, 1]
    features = [{"input_ids": [0] * n, "id": i} for i, n in enumerate(lengths)]
    rules = {"a": [None, "k"], "b": [None, "k"]}
    seconds, decisions, batches = batch_rounds(engines, features, rules, 3, repeats=2, warmup=1)
    assert [b.tolist() for b in batches] == [[6, 1, 3], [5, 0, 4], [2]]  # by length
    warm, timed = log[:2], log[2:]
    assert [(n, r) for n, r, _ in warm] == [("a", None), ("b", None)]
    assert len(timed) == 2 * 3 * 4  # 2 repeats x 3 batches x (2 settings x 2 engines)
    forward = [("a", None), ("b", None), ("a", "k"), ("b", "k")]
    for r in range(6):
        part = timed[4 * r : 4 * r + 4]
        assert [(n, k) for n, k, _ in part] == (forward if r % 2 == 0 else forward[::-1])
        assert {ids for *_, ids in part} == {tuple(batches[r % 3].tolist())}
    assert set(seconds) == {("a", 0), ("b", 0), ("a", 1), ("b", 1)}
    assert all(s.shape == (3,) and (s > 0).all() for s in seconds.values())
    exit_index, logits = decisions[("a", 1)]  # back in input order
    np.testing.assert_array_equal(logits[:, 0], np.arange(7))
    assert (exit_index == 0).all() and (decisions[("b", 0)][0] == 5).all()


def chosen_run(runs, tmp_path, method="berxit", policy="entropy"):
    """A run with its sweep and operating points as the workflow writes them, the knob
    replaced by one that splits the test examples."""
    run, data_dir = runs[method]
    run_key = {"task": "cls", "method": method, "seed": 0}
    # the tiny models are sure of themselves (entropies below 0.1): a fine grid
    policies = {"entropy": {"num_thresholds": 401}}
    sweep_file(run / "exit_logits.npz", run / "sweep.tsv", policies, None, run_key)
    points = tmp_path / "operating_points.tsv"
    write_operating_points([run / "sweep.tsv"], 0.01, points)
    # dev chooses a knob that sends every example out at the first exit; take the grid
    # value whose layer speed-up lies halfway instead
    sweeps = load_sweeps([run / "sweep.tsv"])
    test = sweeps[(sweeps.split == "test") & (sweeps.policy == policy)]
    middle = test.threshold.iloc[(test.speedup - (1 + test.speedup.max()) / 2).abs().argmin()]
    table = pd.read_csv(points, sep="\t")
    table["threshold"] = middle
    table.to_csv(points, sep="\t", index=False)
    return run, data_dir, run_key, points, middle


SPLIT = {"batch_size": 16}  # 40 test examples: three rounds
SETTINGS = LatencySettings.from_config(
    {"examples": 8, "warmup": 0, "repeats": 2, "batch_sizes": [4], "whole_split": SPLIT}
)


def test_the_stage_times_every_test_example_at_the_chosen_knob(runs, tmp_path):
    run, data_dir, run_key, points, chosen = chosen_run(runs, tmp_path)
    out, split_path = tmp_path / "latency.tsv", tmp_path / "measured_speedup.tsv"
    latency_file(
        run, data_dir, out, "entropy", run_key, points, SETTINGS, "cpu", 1, split_path=split_path
    )
    split = pd.read_csv(split_path, sep="\t")
    assert len(split) == 4 and set(split.engine) == {TORCH, ORT}
    assert split.columns[:3].tolist() == ["task", "method", "seed"]
    assert (split.examples == 40).all() and (split.rounds == 3).all()
    assert (split.batch_size == 16).all() and (split.device == "cpu").sum() == 2
    knob = split[split.policy == "entropy"]
    full = split[split.policy == FULL]
    # the knob chosen on dev, and the layer speed-up the sweep simulates on the whole test split
    sweeps = load_sweeps([run / "sweep.tsv"])
    test = sweeps[(sweeps.split == "test") & np.isclose(sweeps.threshold, chosen)]
    assert np.allclose(knob.knob, chosen)
    np.testing.assert_allclose(knob.layer_speedup, test.speedup.iloc[0])
    assert 1.2 < knob.layer_speedup.iloc[0] < 3.5  # some examples exit early, others do not
    # the engines agree with the stored outputs (near-knob differences aside)
    assert (knob.differ == knob.tolerated).all() and (knob.tolerated <= 0).all()
    np.testing.assert_allclose(knob.engine_layer_speedup, knob.layer_speedup)
    assert (
        (knob.speedup_lo <= knob.measured_speedup) & (knob.measured_speedup <= knob.speedup_hi)
    ).all()
    assert ((knob.ratio_lo <= knob.ratio) & (knob.ratio <= knob.ratio_hi)).all()
    np.testing.assert_allclose(knob.ratio, knob.measured_speedup / knob.layer_speedup)
    np.testing.assert_allclose(
        knob.measured_speedup.to_numpy(), full.seconds.to_numpy() / knob.seconds.to_numpy()
    )
    assert (full.measured_speedup == 1).all() and (full.full_depth_spread == 1).all()
    # the curve on the first examples is still there
    assert set(pd.read_csv(out, sep="\t").examples) == {8}


def test_an_engine_that_disagrees_with_the_stored_outputs_stops_the_stage(
    runs, tmp_path, monkeypatch
):
    """An engine that exits at another knob than the one chosen on dev: the job fails with
    one line naming the run, the engine and how many examples differ."""
    run, data_dir, run_key, points, _ = chosen_run(runs, tmp_path)
    real = EarlyExitEngine.policy

    def elsewhere(self, name, threshold, **options):  # never exits early
        return real(self, name, 0.0, **options)

    monkeypatch.setattr(EarlyExitEngine, "policy", elsewhere)
    timed = [{"run_dir": run, "data_dir": data_dir, "policy": "entropy", "run_key": run_key}]
    settings = SETTINGS.replace(onnxruntime=False)
    out, split = tmp_path / "latency.tsv", tmp_path / "measured_speedup.tsv"
    with pytest.raises(DataError, match=r"torch engine at entropy .*differ from the stored") as err:
        time_runs(timed, [out], points, settings, "cpu", 1, split_path=split)
    assert str(run) in str(err.value) and "\n" not in str(err.value)
    assert not split.exists()
