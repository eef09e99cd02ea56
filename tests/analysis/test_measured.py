"""The measured speed-up of the whole test split beside the layer speed-up of the same
examples: in the results tables, the method slides, the latency slides and the headline."""

import pandas as pd
import pytest
from deck_inputs import operating_points, point

from early_exit.analysis import headline, results
from early_exit.analysis.latency import latency_markdown
from early_exit.analysis.measured import load_measured, measured_column, measured_summary
from early_exit.slides import generated
from early_exit.support.errors import DataError
from early_exit.support.tables import write_table

INFO = {
    "deebert": {"recipe": "deebert", "criterion": "entropy", "static": False},
    "finetune": {"recipe": "finetune", "criterion": None, "static": True},
}


def measured(seeds=(13,), task="news"):
    """The latency stage's whole-split table: deebert under entropy, both engines."""
    rows = []
    for seed in seeds:
        for engine, speed in (("torch", 2.0), ("onnxruntime", 2.2)):
            common = {"task": task, "method": "deebert", "seed": seed, "engine": engine,
                      "batch_size": 32, "examples": 425, "rounds": 14, "repeats": 1,
                      "full_depth_spread": 1.0, "full_depth_disagrees": False}  # fmt: skip
            rows.append(
                common
                | {
                    "policy": "full",
                    "knob": float("nan"),
                    "measured_speedup": 1.0,
                    "speedup_lo": 1.0,
                    "speedup_hi": 1.0,
                    "layer_speedup": 1.0,
                    "differ": 0,
                    "tolerated": 0,
                }  # fmt: skip
            )
            shift = 0.1 * (seed - 13)
            rows.append(
                common
                | {
                    "policy": "entropy",
                    "knob": 0.25,
                    "measured_speedup": speed + shift,
                    "speedup_lo": speed - 0.2 + shift,
                    "speedup_hi": speed + 0.3 + shift,
                    "layer_speedup": 2.4,
                    "differ": 1,
                    "tolerated": 1,
                }  # fmt: skip
            )
    return pd.DataFrame(rows)


def points(task="news"):
    return operating_points(
        [
            point(method, policy, threshold, seed=13, speedup=speedup, task=task)
            for method, policy, threshold, speedup in (
                ("deebert", "entropy", 0.25, 2.4),
                ("deebert", "patience", 2, 1.5),
                ("finetune", "single-exit", float("nan"), 1.0),
            )
        ]
    )


def test_the_summary_keeps_one_engine_and_spans_the_seeds():
    one = measured_summary(measured())
    assert len(one) == 1 and one.engine.iloc[0] == "torch"
    row = one.iloc[0]
    assert (row.measured_speedup, row.speedup_lo, row.speedup_hi) == (2.0, 1.8, 2.3)
    assert (row.layer_speedup, row.examples, row.rounds, row.differ) == (2.4, 425, 14, 1)
    three = measured_summary(measured(seeds=(13, 14, 15)), engine=None)
    assert len(three) == 2 and (three.seeds == 3).all()
    torch = three[three.engine == "torch"].iloc[0]
    assert torch.measured_speedup == pytest.approx(2.1)  # the mean over seeds
    assert (torch.speedup_lo, torch.speedup_hi) == pytest.approx((1.8, 2.5))  # the envelope


def test_the_results_table_shows_layer_and_measured_speed_up_of_the_same_examples():
    summary = results.summary_table(points())
    text = results.results_markdown(summary, 0.01, "Results", measured=measured_summary(measured()))
    header = next(line for line in text.splitlines() if line.startswith("| Method"))
    assert header.index("Speed-up") < header.index("Measured")
    deebert = next(line for line in text.splitlines() if "| deebert " in line and "entropy" in line)
    assert "2.40×" in deebert and "2.00× [1.80, 2.30]" in deebert
    patience = next(line for line in text.splitlines() if "patience" in line)
    assert "–" in patience  # another policy than the one timed
    assert "same 425 test examples as Speed-up (batch size 32)" in text
    assert "over 14 interleaved rounds" in text and "matched but on 1, all near the knob" in text
    agreed = measured_summary(measured().assign(differ=0))
    assert "matched on every example" in results.results_markdown(summary, 0.01, "R", None, agreed)
    # without a measurement the table is as before
    assert "Measured" not in results.results_markdown(summary, 0.01, "Results")


def test_other_test_splits_are_not_given_the_test_splits_measurement():
    summary = results.summary_table(points()).assign(test_split="test_mismatched")
    assert measured_column(summary, measured_summary(measured())) == ["–"] * 3


def test_the_method_slide_shows_both_speed_ups():
    text = generated.methods_markdown(INFO, points(), None, measured())
    assert "at 2.40× on test (full depth 90.0); wall-clock 2.00× [1.80, 2.30]" in text
    assert "wall-clock" not in generated.methods_markdown(INFO, points())


def test_the_latency_slides_lead_with_every_test_example_and_name_the_subset():
    rows = [("full", float("nan"), False, 1.0, 1.0, 10.0), ("entropy", 0.25, True, 1.8, 2.0, 5.5)]
    curve = pd.DataFrame(
        [
            {"policy": p, "knob": k, "chosen_on_dev": c, "measured_speedup": m,
             "layer_speedup": x, "ms_per_example": ms, "batch_size": 1}
            for p, k, c, m, x, ms in rows
        ]
    ).assign(task="bbc-news", method="deebert", seed=13, examples=32, repeats=4, device="cpu",
             threads=2, speedup_min=1.7, speedup_max=1.9, full_depth_spread=1.0,
             full_depth_disagrees=False, engine="torch", time_vs_torch=1.0)  # fmt: skip
    curve["ratio"] = curve.measured_speedup / curve.layer_speedup
    text = latency_markdown(curve, "Measured speed-up", measured(task="bbc-news"))
    slides = text.split("\n---\n")
    titles = [s.strip().splitlines()[0] for s in slides]
    assert titles == [
        "# Measured speed-up: bbc-news, every test example",
        "# Measured speed-up: bbc-news, first 32 test examples",
    ]
    row = next(line for line in slides[0].splitlines() if line.startswith("| deebert"))
    assert "2.40×" in row and "2.00× [1.80, 2.30]" in row and "2.20× [2.00, 2.50]" in row
    assert "Every test example (425)" in slides[0] and "14 interleaved rounds" in slides[0]


def test_the_headline_shows_the_measured_speed_up_when_the_run_has_one():
    elue = pd.DataFrame(
        {"task": ["news"], "method": ["deebert"], "policy": ["entropy"], "elue": [0.1]}
    )
    ranges = elue.drop(columns="elue").assign(elue_lo=-0.5, elue_hi=0.7)
    keys = points()[["task", "method", "policy", "test_split"]]
    spread = keys.assign(
        test_score_lo=0.8, test_score_hi=0.9, test_speedup_lo=2.0, test_speedup_hi=2.9
    )
    tables = {"operating_points.tsv": points(), "intervals.tsv": spread, "elue.tsv": elue,
              "elue_intervals.tsv": ranges}  # fmt: skip
    criteria = {"deebert": "entropy"}
    before = headline.headline_markdown(tables, criteria)
    assert "at 2.40× [2.00, 2.90] |" in before and "measured" not in before
    after = headline.headline_markdown(tables | {"measured_speedup.tsv": measured()}, criteria)
    assert "at 2.40× [2.00, 2.90], measured 2.00× [1.80, 2.30] |" in after


def test_a_missing_table_names_the_rule(tmp_path):
    with pytest.raises(DataError, match="measured speed-up table missing.*rule latency"):
        load_measured(tmp_path / "measured_speedup.tsv")
    write_table(measured().drop(columns="differ"), tmp_path / "broken.tsv")
    with pytest.raises(DataError, match="differ"):
        load_measured(tmp_path / "broken.tsv")
