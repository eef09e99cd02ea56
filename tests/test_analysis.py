import matplotlib
import pandas as pd
import pytest

from early_exit import analysis, plots
from early_exit.errors import DataError

matplotlib.use("Agg")


def sweep_rows(task, method, seed, dev, test):
    """dev/test: lists of (threshold, score, speedup); avg_exit_layer = 6 / speedup."""
    rows = []
    for split, points in (("dev", dev), ("test", test)):
        for threshold, score, speedup in points:
            rows.append(
                {
                    "task": task,
                    "method": method,
                    "seed": seed,
                    "split": split,
                    "policy": "entropy",
                    "threshold": threshold,
                    "metric": "accuracy",
                    "score": score,
                    "accuracy": score,
                    "avg_exit_layer": 6 / speedup,
                    "layer_fraction_used": 1 / speedup,
                    "speedup": speedup,
                }
            )
    return rows


@pytest.fixture
def sweeps():
    dev = [(0.0, 0.90, 1.0), (0.2, 0.895, 1.5), (0.4, 0.85, 2.0), (0.6, 0.5, 6.0)]
    test = [(0.0, 0.88, 1.0), (0.2, 0.87, 1.6), (0.4, 0.80, 2.1), (0.6, 0.45, 6.0)]
    rows = sweep_rows("news", "joint", 1, dev, test)
    rows += sweep_rows("news", "joint", 2, dev, [(t, s - 0.02, x) for t, s, x in test])
    return pd.DataFrame(rows)


def test_operating_point_is_the_fastest_within_the_allowed_dev_drop(sweeps):
    points = analysis.operating_points(sweeps, max_drop=0.01)
    assert len(points) == 2
    first = points.iloc[0]
    assert first.threshold == 0.2  # 0.895 >= 0.90 - 0.01; 0.85 is not
    assert (first.test_score, first.test_speedup, first.test_score_full) == (0.87, 1.6, 0.88)
    loose = analysis.operating_points(sweeps, max_drop=0.06)
    assert loose.iloc[0].threshold == 0.4


def test_summary_and_markdown_report_mean_and_spread_over_seeds(sweeps):
    summary = analysis.summary_table(analysis.operating_points(sweeps, 0.01))
    row = summary.iloc[0]
    assert row.seeds == 2
    assert row.test_score_mean == pytest.approx(0.86)
    text = analysis.markdown_table(summary, 0.01, "Results")
    assert text.startswith("# Results\n")
    assert "86.0 ± 1.4" in text  # (87, 85) x 100: mean 86, sample std 1.41
    assert "1.60 ± 0.00×" in text


def test_missing_sweep_table_is_named(tmp_path):
    with pytest.raises(DataError, match="nope.tsv"):
        analysis.load_sweeps([tmp_path / "nope.tsv"])


def test_tradeoff_figure_has_one_panel_per_task_and_one_colour_per_method(sweeps, tmp_path):
    other = sweeps.assign(task="headlines", method="other")
    data = pd.concat([sweeps, other, sweeps.assign(method="other")])
    fig = plots.tradeoff_figure(data, "test", analysis.operating_points(data, 0.01))
    assert sorted(ax.get_title() for ax in fig.axes) == ["headlines", "news"]
    palette = plots.method_palette(["other", "joint", "other"])
    assert list(palette) == ["joint", "other"] and palette["joint"] != palette["other"]
    plots.save_figure(fig, tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    # curves are averaged over seeds per threshold
    curve = plots.curve_points(sweeps, "test")
    assert curve.score.tolist() == pytest.approx([0.87, 0.86, 0.79, 0.44])
