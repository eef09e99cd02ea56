"""The serving stage on a tiny run: every mode at every rate, bounded in time."""

import time

from early_exit.serving.stage import COLUMNS, serve_runs
from early_exit.support.tables import read_table


def test_the_stage_writes_every_mode_and_rate(serving_runs, tmp_path):
    runs, _ = serving_runs
    run_dir = runs["joint"]
    run = {
        "run_key": {"task": "cls", "method": "joint", "seed": "0"},
        "run_dir": str(run_dir),
        "data_dir": str(run_dir.parents[3] / "data" / "cls"),
        "policy": "entropy",
        "threshold": 0.01,
    }
    settings = {
        "rates": [0.5, 2],
        "requests": 20,
        "seconds": 1.0,
        "texts": 16,
        "max_batch": 8,
        "max_queue": 256,
        "max_wait": 4,
        "timeout": 10,
    }
    start = time.perf_counter()
    serve_runs([run], [tmp_path / "serving.tsv"], None, settings, "cpu", 1)
    assert time.perf_counter() - start < 60
    table = read_table(tmp_path / "serving.tsv", "serving table", "rule serving")
    assert list(table.columns) == ["task", "method", "seed", *COLUMNS]
    assert sorted(set(table["mode"])) == ["full", "refill", "shrink"]
    assert (table.answered > 0).all() and (table.p99_ms >= table.p50_ms).all()
