import numpy as np
import pandas as pd
import pytest

from early_exit.atomic import atomic_path
from early_exit.policies import entropy_exits, entropy_grid
from early_exit.sweep import sweep_file


def write_logits(path, n=120, exits=(1, 2, 4), classes=3, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "exit_layers": np.array(exits),
        "num_layers": np.array(4),
        "label_names": np.array(["a", "b", "c"][:classes]),
        "task_type": np.array("classification"),
        "metric": np.array("accuracy"),
    }
    for split in ("dev", "test"):
        labels = rng.integers(0, classes, n)
        logits = rng.normal(size=(n, len(exits), classes))
        logits[np.arange(n), :, labels] += np.linspace(0.5, 3, len(exits))  # deeper = better
        arrays |= {
            f"{split}_logits": logits.astype(np.float32),
            f"{split}_labels": labels,
            f"{split}_lengths": rng.integers(3, 20, n),
            f"{split}_ids": np.arange(n),
        }
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return arrays


def test_sweep_table_matches_a_brute_force_loop(tmp_path):
    arrays = write_logits(tmp_path / "exit_logits.npz")
    table = sweep_file(
        tmp_path / "exit_logits.npz",
        tmp_path / "sweep.tsv",
        {"entropy": {"num_thresholds": 9}},
        ["dev", "test"],
        {"task": "t", "method": "m", "seed": 3},
    )
    assert list(table.columns[:3]) == ["task", "method", "seed"]
    assert len(table) == 18
    on_disk = pd.read_csv(tmp_path / "sweep.tsv", sep="\t")
    pd.testing.assert_frame_equal(
        on_disk[["threshold", "score"]], table[["threshold", "score"]], atol=1e-5
    )
    layers = arrays["exit_layers"]
    for split in ("dev", "test"):
        logits, labels = arrays[f"{split}_logits"], arrays[f"{split}_labels"]
        rows = table[table.split == split]
        for row in rows.itertuples():
            exit_idx = entropy_exits(logits, np.array([row.threshold]))[0]
            correct = [logits[n, exit_idx[n]].argmax() == labels[n] for n in range(len(labels))]
            used = [layers[e] for e in exit_idx]
            assert row.accuracy == pytest.approx(np.mean(correct))
            assert row.score == pytest.approx(np.mean(correct))
            assert row.avg_exit_layer == pytest.approx(np.mean(used))
            assert row.layer_fraction_used == pytest.approx(np.mean(used) / 4)
            assert row.speedup == pytest.approx(4 / np.mean(used))


def test_sweep_cost_ends(tmp_path):
    write_logits(tmp_path / "l.npz")
    table = sweep_file(
        tmp_path / "l.npz",
        tmp_path / "s.tsv",
        {"entropy": {"num_thresholds": 5}},
        ["dev"],
        {"task": "t"},
    )
    grid = entropy_grid(3, 5)
    np.testing.assert_allclose(table.threshold, grid)
    first, last = table.iloc[0], table.iloc[-1]
    assert (first.avg_exit_layer, first.speedup) == (4, 1)  # S = 0: every example runs all layers
    assert (last.avg_exit_layer, last.speedup) == (1, 4)  # S > ln 3: all leave at layer 1
