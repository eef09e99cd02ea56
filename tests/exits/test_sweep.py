import json

import numpy as np
import pandas as pd
import pytest

from early_exit.exits.policies import Outputs, get_policy
from early_exit.exits.sweep import sweep_file, sweep_stored
from early_exit.support.atomic import atomic_path
from early_exit.support.errors import ConfigError

ALL = {
    "entropy": {"num_thresholds": 9},
    "patience": {"values": "all"},
    "confidence": {"num_thresholds": 9},
    "oracle": {},
}


def stored_arrays(n=120, exits=(1, 2, 4), classes=3, seed=0, task_type="classification"):
    rng = np.random.default_rng(seed)
    arrays = {
        "exit_layers": np.array(exits),
        "num_layers": np.array(4),
        "label_names": np.array(["a", "b", "c"][:classes]),
        "task_type": np.array(task_type),
        "metric": np.array("accuracy" if task_type == "classification" else "pearson"),
    }
    for split in ("dev", "test"):
        lengths = rng.integers(3, 20, n)
        if task_type == "classification":
            labels = rng.integers(0, classes, n)
            logits = rng.normal(size=(n, len(exits), classes))
            logits[np.arange(n), :, labels] += np.linspace(0.5, 3, len(exits))  # deeper = better
        else:
            labels = rng.normal(size=n)
            logits = labels[:, None, None] + rng.normal(scale=0.5, size=(n, len(exits), 1))
        flops = lengths[:, None] * np.array(exits)[None, :] * 1e6
        arrays |= {
            f"{split}_logits": logits.astype(np.float32),
            f"{split}_labels": labels,
            f"{split}_lengths": lengths,
            f"{split}_ids": np.arange(n).astype(str),
            f"{split}_flops": flops,
        }
    return arrays


def save(path, arrays):
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def test_sweep_table_matches_a_brute_force_loop(tmp_path):
    arrays = stored_arrays()
    save(tmp_path / "exit_logits.npz", arrays)
    (tmp_path / "cal.json").write_text(json.dumps({"temperatures": [2.0, 1.0, 0.5]}))
    table = sweep_file(
        tmp_path / "exit_logits.npz",
        tmp_path / "sweep.tsv",
        ALL,
        ["dev", "test"],
        {"task": "t", "method": "m", "seed": 3},
        tmp_path / "cal.json",
    )
    assert list(table.columns[:3]) == ["task", "method", "seed"]
    assert set(table.policy) == set(ALL)
    on_disk = pd.read_csv(tmp_path / "sweep.tsv", sep="\t")
    pd.testing.assert_frame_equal(on_disk, table, check_dtype=False)
    layers = arrays["exit_layers"]
    for row in table.itertuples():
        logits, labels = arrays[f"{row.split}_logits"], arrays[f"{row.split}_labels"]
        out = Outputs(logits, labels, temperatures=np.array([2.0, 1.0, 0.5]))
        exit_idx = get_policy(row.policy).exits(out, np.array([row.threshold]))[0]
        correct = [logits[n, exit_idx[n]].argmax() == labels[n] for n in range(len(labels))]
        used = [layers[e] for e in exit_idx]
        flops = [arrays[f"{row.split}_flops"][n, e] for n, e in enumerate(exit_idx)]
        assert row.accuracy == pytest.approx(np.mean(correct))
        assert row.score == pytest.approx(np.mean(correct))
        assert row.avg_exit_layer == pytest.approx(np.mean(used))
        assert row.layer_fraction_used == pytest.approx(np.mean(used) / 4)
        assert row.speedup == pytest.approx(4 / np.mean(used))
        assert row.avg_flops == pytest.approx(np.mean(flops))


def test_calibrated_confidence_uses_the_temperatures():
    arrays = stored_arrays()
    plain = sweep_stored(arrays, {"confidence": {"num_thresholds": 9}}, ["dev"])
    scaled = sweep_stored(
        arrays,
        {"confidence": {"num_thresholds": 9}},
        ["dev"],
        temperatures=np.array([5.0, 5.0, 5.0]),
    )
    assert (scaled.avg_exit_layer >= plain.avg_exit_layer).all()  # softer: exits later
    assert (scaled.avg_exit_layer > plain.avg_exit_layer).any()


def test_single_exit_models_get_one_row_per_split():
    arrays = stored_arrays(exits=(2,))
    table = sweep_stored(arrays, ALL, ["dev", "test"])
    assert table.policy.tolist() == ["single-exit", "single-exit"]
    assert (table.avg_exit_layer == 2).all() and (table.speedup == 2).all()


def test_regression_sweeps_patience_with_the_task_metric_and_rejects_entropy():
    arrays = stored_arrays(task_type="regression")
    table = sweep_stored(arrays, {"patience": {"values": [1, 2], "tau": 0.5}}, ["test"])
    assert table.metric.unique().tolist() == ["pearson"]
    assert table.accuracy.isna().all() and table.score.between(-1, 1).all()
    with pytest.raises(ConfigError, match="does not apply to regression"):
        sweep_stored(arrays, {"entropy": {"num_thresholds": 5}}, ["test"])


def test_patience_larger_than_the_exits_is_rejected():
    with pytest.raises(ConfigError, match="impossible with 3 exits"):
        sweep_stored(stored_arrays(), {"patience": {"values": [3]}}, ["dev"])


def test_every_row_carries_the_full_models_score_whatever_the_grid():
    arrays = stored_arrays()
    table = sweep_stored(arrays, {"patience": {"values": [1]}, "oracle": {}}, ["dev", "test"])
    for split in ("dev", "test"):
        last = arrays[f"{split}_logits"][:, -1].argmax(-1) == arrays[f"{split}_labels"]
        rows = table[table.split == split]
        assert rows.full_score.tolist() == pytest.approx([last.mean()] * len(rows))
        assert rows.full_flops.tolist() == pytest.approx(
            [arrays[f"{split}_flops"][:, -1].mean()] * 2
        )
        # neither the oracle nor t = 1 (of 3 exits) is the full model
        assert not np.isclose(rows.score, last.mean()).any()


def test_learned_policy_sweeps_runs_with_gate_scores_and_skips_the_others(tmp_path, caplog):
    learned = {"learned": {"num_thresholds": 5}, "entropy": {"num_thresholds": 5}}
    plain = stored_arrays()
    with caplog.at_level("INFO"):
        table = sweep_stored(plain, learned, ["dev"])
    assert set(table.policy) == {"entropy"}
    assert "policy learned not applicable" in caplog.text
    gated = stored_arrays()
    scores = np.random.default_rng(3).uniform(size=(120, 3)).astype(np.float32)
    gated["dev_scores"] = scores
    save(tmp_path / "gated.npz", gated)  # the optional slot survives a write and a read
    table = sweep_file(tmp_path / "gated.npz", tmp_path / "s.tsv", learned, ["dev"], {})
    rows = table[table.policy == "learned"]
    assert len(rows) == 5
    tau = rows.threshold.iloc[2]
    first = np.where(scores < tau, np.arange(3), 99).min(1)
    first[first == 99] = 2
    layers = np.array([1, 2, 4])[first]
    assert rows.avg_exit_layer.iloc[2] == pytest.approx(layers.mean())


def test_parameter_count_is_carried_into_every_row():
    arrays = stored_arrays()
    assert sweep_stored(arrays, ALL, ["dev"]).num_parameters.isna().all()  # older files
    arrays["num_parameters"] = np.array(12345)
    assert (sweep_stored(arrays, ALL, ["dev", "test"]).num_parameters == 12345).all()
