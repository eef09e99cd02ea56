import matplotlib
import numpy as np
import pytest
from fake_runs import make_run

from early_exit.analysis import calibration
from early_exit.exits.calibration import ece

matplotlib.use("Agg")

# confidence 0.9 (both right) and 0.6 (one of two right)
LOGITS = np.log(np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]]))
LABELS = np.array([0, 0, 0, 1])


def test_reliability_bins_match_the_ece_of_the_calibration_step():
    bins = calibration.reliability_bins(LOGITS, LABELS)
    assert bins["count"].tolist() == [2, 2]
    assert bins.confidence.tolist() == pytest.approx([0.6, 0.9])
    assert bins.accuracy.tolist() == pytest.approx([0.5, 1.0])
    assert calibration.ece_from_bins(bins) == pytest.approx(ece(LOGITS, LABELS))
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(500, 4)) * 3, rng.integers(0, 4, 500)
    for temp in (0.5, 2.0):
        bins = calibration.reliability_bins(z, y, temp)
        assert calibration.ece_from_bins(bins) == pytest.approx(ece(z, y, temp))


def run(seed=1, method="m", temps=(1.0, 4.0)):
    preds = [[0, 0], [0, 1], [1, 1], [2, 1]]
    return make_run(preds, [0, 1, 1, 2], [1, 3], method=method, seed=seed, temperatures=temps)


def test_reliability_frame_scales_by_each_exits_temperature_and_pools_seeds():
    bins = calibration.reliability_frame([run(1), run(2)], "test")
    assert set(bins.scaling) == {"before", "after"} and set(bins.exit_layer) == {1, 3}
    after = bins[(bins.scaling == "after") & (bins.exit_layer == 3)]
    before = bins[(bins.scaling == "before") & (bins.exit_layer == 3)]
    assert after.confidence.max() < before.confidence.min()  # T = 4 softens
    pooled = calibration.pool_seeds(bins)
    one = pooled[(pooled.scaling == "before") & (pooled.exit_layer == 1)]
    assert one["count"].sum() == 8  # 4 examples x 2 seeds
    assert one.accuracy.tolist() == pytest.approx(before.accuracy.tolist()[:1] * len(one))


def test_ece_table_has_a_column_per_exit_layer_and_a_dash_where_none():
    runs = [run(), make_run([[0, 0, 0]], [0], [1, 2, 3], method="other")]
    table = calibration.ece_frame(runs, "test")
    assert len(table) == 2 * (2 + 3)
    text = calibration.ece_markdown(table, "ECE", "test")
    assert text.startswith("# ECE\n")
    assert "| news   | m        | 0.200 → 0.100 | –             | 0.200 → 0.100 |" in text


def test_calibrated_methods_are_those_exiting_on_confidence():
    info = {
        "a": {"criterion": "entropy", "static": False},
        "b": {"criterion": "confidence", "static": False},
        "s": {"criterion": None, "static": True},
    }
    assert calibration.calibrated_methods(info) == ["b"]
    info["b"]["criterion"] = "patience"
    assert calibration.calibrated_methods(info) == ["a", "b"]


def test_figures_have_a_panel_per_exit_and_task():
    runs = [run(1), run(2), run(1, method="other")]
    bins = calibration.reliability_frame(runs, "test")
    fig = calibration.reliability_figure(bins, {"m": "C0", "other": "C1"}, "test")
    titles = [ax.get_title() for ax in fig.axes]
    assert len(titles) == 2 * 2  # (m, other) x (raw, scaled) on the one task
    assert titles[:2] == ["news\nraw softmax", "news\ntemperature-scaled"]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["exit 1", "exit 3", "calibrated"]  # a line per exit in every panel
    assert all(len(ax.lines) == 1 + 2 for ax in fig.axes)  # the diagonal and two exits
    ece_table = calibration.ece_frame(runs, "test")
    fig = calibration.ece_figure(ece_table, {"m": "C0", "other": "C1"}, "test")
    assert [ax.get_title() for ax in fig.axes] == ["news"]
