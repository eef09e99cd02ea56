"""The serving stage on a tiny run: every mode at every rate, bounded in time, each mode
offered the same arrivals at a rate, with the samples and intervals behind its figures."""

import time

import numpy as np

from early_exit.serving import under_load
from early_exit.serving.under_load import COLUMNS, ServingSettings, serve_runs
from early_exit.support.tables import read_table


def test_the_stage_writes_every_mode_and_rate_on_paired_loads(serving_runs, tmp_path, monkeypatch):
    runs, _ = serving_runs
    run_dir = runs["joint"]
    run = {
        "run_key": {"task": "cls", "method": "joint", "seed": "0"},
        "run_dir": str(run_dir),
        "data_dir": str(run_dir.parents[3] / "data" / "cls"),
        "policy": "entropy",
        "threshold": 0.01,
    }
    settings = ServingSettings(
        rates=(0.5, 2),
        requests=20,
        seconds=1.0,
        texts=16,
        max_batch=8,
        max_queue=256,
        max_wait=4,
        timeout=10,
    )
    offered = {}  # seed -> the arrival sequences offered under it (one per mode)
    run_load = under_load.run_load

    def recording(*args, **kwargs):
        load = run_load(*args, **kwargs)
        if kwargs.get("seed") is not None:
            offered.setdefault(kwargs["seed"], []).append(load.scheduled)
        return load

    monkeypatch.setattr(under_load, "run_load", recording)
    start = time.perf_counter()
    serve_runs([run], [tmp_path / "serving.tsv"], None, settings, "cpu", 1)
    assert time.perf_counter() - start < 60
    table = read_table(tmp_path / "serving.tsv", "serving table", "rule serving")
    assert list(table.columns) == ["task", "method", "seed", *COLUMNS]
    assert sorted(set(table["mode"])) == ["full", "refill", "shrink"]
    assert (table.answered > 0).all() and (table.p99_ms >= table.p50_ms).all()
    assert (table.p50_low_ms <= table.p50_ms).all() and (table.p50_ms <= table.p50_high_ms).all()
    assert (table.rows_per_call >= 1).all()
    # paired: at each rate the three modes got one and the same arrival sequence
    assert len(offered) == len(settings.rates)
    for sequences in offered.values():
        assert len(sequences) == 3
        assert all(np.array_equal(s, sequences[0]) for s in sequences)
    for _, rows in table.groupby("rate_multiple"):
        assert rows.sent.nunique() == 1
