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
    frame["speedup_min"] = frame.measured_speedup * 0.95
    frame["speedup_max"] = frame.measured_speedup * 1.05
    frame["full_depth_spread"] = 1.0
    frame["full_depth_disagrees"] = False
    frame["engine"] = "torch"
    frame["time_vs_torch"] = 1.0
    return frame


def both_engines():
    """The same runs on ONNX Runtime too: 0.8 of torch's time everywhere, the same
    speed-ups."""
    ort = table().assign(engine="onnxruntime", device="CPUExecutionProvider", time_vs_torch=0.8)
    ort["ms_per_example"] *= 0.8
    return pd.concat([table(), ort], ignore_index=True)


def test_summary_keeps_the_chosen_knob_and_its_full_depth_time():
    summary = latency_summary(table())
    assert len(summary) == 4
    assert (summary.knob == 0.3).all() and (summary.full_ms == 10.0).all()
    assert summary.ratio.tolist() == pytest.approx([0.9] * 4)
    # the speed-up's spread over rounds, and the same spread as a ratio
    assert summary.speedup_min.tolist() == pytest.approx([1.8 * 0.95] * 4)
    assert summary.ratio_max.tolist() == pytest.approx([0.9 * 1.05] * 4)
    assert not summary.full_depth_disagrees.any()


def test_seeds_widen_the_spread_to_the_lowest_min_and_highest_max():
    two = pd.concat([table(), table().assign(seed=14, speedup_min=1.0, speedup_max=3.0)])
    summary = latency_summary(two)
    assert summary.speedup_min.tolist() == [1.0] * 4
    assert summary.speedup_max.tolist() == [3.0] * 4


def test_markdown_and_figure(tmp_path):
    text = latency_markdown(table(), "Measured speed-up")
    assert text.startswith("# Measured speed-up: bbc-news")
    assert "5.50 (10.00)" in text and "cpu (2 threads)" in text
    assert "1.80× (1.71–1.89)" in text and "| 0.90 " in text
    assert "3 interleaved rounds" in text and "disagrees" not in text
    fig = speedup_figure(table(), {"deebert": "red", "pabee": "blue"})
    assert len(fig.axes) == 2  # one panel per engine and batch size


def test_both_engines_side_by_side():
    frame = both_engines()
    summary = latency_summary(frame)
    assert len(summary) == 8 and set(summary.engine) == {"torch", "onnxruntime"}
    ort = summary[summary.engine == "onnxruntime"]
    assert ort.full_ms.tolist() == pytest.approx([8.0] * 4)
    assert ort.time_vs_torch.tolist() == pytest.approx([0.8] * 4)
    text = latency_markdown(frame, "Measured speed-up")
    header = next(line for line in text.splitlines() if line.startswith("| Method"))
    assert header.index("torch measured") < header.index("ORT measured")
    assert text.count('<div class="dense-table">') == text.count("</div>") == 1
    body = [line for line in text.splitlines() if line.startswith(("| deebert", "| pabee"))]
    assert len(body) == 4  # one row per method and batch size, both engines in it
    assert all("5.50 (10.00)" in line and "4.40 (8.00)" in line for line in body)
    assert "ORT on CPUExecutionProvider (2 threads)" in text
    fig = speedup_figure(frame, {"deebert": "red", "pabee": "blue"})
    assert len(fig.axes) == 4  # a panel per engine and batch size, side by side
    assert fig.axes[2].get_title().startswith("ORT, batch")


def test_a_slide_per_task():
    two = pd.concat([table(), table().assign(task="bbc-headlines")], ignore_index=True)
    slides = latency_markdown(two, "Measured speed-up").split("\n---\n")
    assert [s.strip().splitlines()[0] for s in slides] == [
        "# Measured speed-up: bbc-headlines, first 32 test examples",
        "# Measured speed-up: bbc-news, first 32 test examples",
    ]


def test_missing_table_is_named(tmp_path):
    with pytest.raises(DataError, match="latency table missing"):
        load_latency([tmp_path / "nope.tsv"])


def test_runs_that_disagree_at_full_depth_are_named_under_the_table():
    frame = table()
    flagged = (frame.method == "pabee") & (frame.batch_size == 1)
    frame.loc[flagged, "full_depth_disagrees"] = True
    frame.loc[flagged, "full_depth_spread"] = 1.31
    text = latency_markdown(frame, "Measured speed-up")
    assert "Full depth disagrees" in text
    assert "bbc-news on torch at batch size 1 (pabee: 1.31×)" in text
    assert latency_summary(frame).full_depth_disagrees.tolist() == [False, False, True, False]
