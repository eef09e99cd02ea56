import pandas as pd
import pytest

from early_exit.analysis.latency import (
    latency_markdown,
    latency_summary,
    load_latency,
    speedup_figure,
)
from early_exit.support.errors import DataError


def table():
    rows = []
    for method, policy in (("deebert", "entropy"), ("pabee", "patience")):
        for batch in (1, 32):
            rows.append(
                dict(
                    policy="full",
                    knob=float("nan"),
                    chosen_on_dev=False,
                    measured_speedup=1.0,
                    layer_speedup=1.0,
                    ms_per_example=10.0,
                )
            )
            rows.append(
                dict(
                    policy=policy,
                    knob=0.3,
                    chosen_on_dev=True,
                    measured_speedup=1.8,
                    layer_speedup=2.0,
                    ms_per_example=5.5,
                )
            )
            rows.append(
                dict(
                    policy=policy,
                    knob=0.5,
                    chosen_on_dev=False,
                    measured_speedup=2.5,
                    layer_speedup=3.0,
                    ms_per_example=4.0,
                )
            )
            for row in rows[-3:]:
                row.update(
                    task="bbc-news",
                    method=method,
                    seed=13,
                    batch_size=batch,
                    examples=32,
                    repeats=3,
                    device="cpu",
                    threads=2,
                )
    frame = pd.DataFrame(rows)
    frame["ratio"] = frame.measured_speedup / frame.layer_speedup
    return frame


def test_summary_keeps_the_chosen_knob_and_its_full_depth_time():
    summary = latency_summary(table())
    assert len(summary) == 4
    assert (summary.knob == 0.3).all() and (summary.full_ms == 10.0).all()
    assert summary.ratio.tolist() == pytest.approx([0.9] * 4)


def test_markdown_and_figure(tmp_path):
    text = latency_markdown(table(), "Measured speed-up")
    assert text.startswith("# Measured speed-up")
    assert "5.50 (10.00)" in text and "0.90" in text and "cpu (2 threads)" in text
    fig = speedup_figure(table(), {"deebert": "red", "pabee": "blue"})
    assert len(fig.axes) == 2  # one panel per task and batch size


def test_missing_table_is_named(tmp_path):
    with pytest.raises(DataError, match="latency table missing"):
        load_latency([tmp_path / "nope.tsv"])
