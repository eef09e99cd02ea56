import matplotlib
import numpy as np
import pandas as pd
import pytest
from sweeps import sweep_rows

from early_exit.analysis import plots, results, roles
from early_exit.exits import operating_points
from early_exit.support.errors import DataError

matplotlib.use("Agg")


DEV = [(0.0, 0.90, 1.0), (0.2, 0.895, 1.5), (0.4, 0.85, 2.0), (0.6, 0.5, 6.0)]
TEST = [(0.0, 0.88, 1.0), (0.2, 0.87, 1.6), (0.4, 0.80, 2.1), (0.6, 0.45, 6.0)]


@pytest.fixture
def sweeps():
    rows = sweep_rows("news", "joint", 1, DEV, TEST)
    rows += sweep_rows("news", "joint", 2, DEV, [(t, s - 0.02, x) for t, s, x in TEST])
    return pd.DataFrame(rows)


def test_operating_point_is_the_fastest_within_the_allowed_dev_drop(sweeps):
    points = operating_points.operating_points(sweeps, max_drop=0.01)
    assert len(points) == 2
    first = points.iloc[0]
    assert first.threshold == 0.2  # 0.895 >= 0.90 - 0.01; 0.85 is not
    assert (first.test_score, first.test_speedup, first.test_score_full) == (0.87, 1.6, 0.88)
    assert first.test_flops == pytest.approx(6e8 / 1.6)
    loose = operating_points.operating_points(sweeps, max_drop=0.06)
    assert loose.iloc[0].threshold == 0.4


def test_the_oracles_full_model_column_is_the_full_depth_score_not_the_oracle():
    rows = sweep_rows("news", "joint", 1, DEV, TEST)
    rows += sweep_rows(
        "news", "joint", 1, [(np.nan, 0.97, 2.5)], [(np.nan, 0.96, 2.4)], "oracle", full=(0.9, 0.88)
    )
    points = operating_points.operating_points(pd.DataFrame(rows), 0.01).set_index("policy")
    assert points.loc["oracle", "test_score_full"] == 0.88  # not the oracle's own 0.96
    assert points.loc["oracle", "test_flops_full"] == pytest.approx(6e8)
    assert points.loc["oracle", "test_score"] == 0.96


def test_a_patience_grid_without_the_last_exit_is_held_to_the_full_depth_score():
    # t = 1, 2 of 6 exits: neither row is the full model (dev 0.90, test 0.88)
    dev = [(1, 0.86, 3.0), (2, 0.865, 2.0)]
    test = [(1, 0.84, 3.0), (2, 0.85, 2.0)]
    rows = sweep_rows("news", "pabee", 1, dev, test, "patience", full=(0.90, 0.88))
    point = operating_points.operating_points(pd.DataFrame(rows), 0.01).iloc[0]
    assert point.test_score_full == 0.88  # not the t = 2 row's 0.85
    # nothing is within 1 point of 0.90, so the best dev score (t = 2), not the fastest
    # row within 1 point of t = 2 (t = 1), as when t = 2 was taken for the full model
    assert point.threshold == 2


def test_an_old_sweep_table_without_the_full_model_is_named(tmp_path):
    path = tmp_path / "old.tsv"
    pd.DataFrame(sweep_rows("n", "m", 1, DEV, TEST)).drop(columns="full_score").to_csv(
        path, sep="\t", index=False
    )
    with pytest.raises(DataError, match="old.tsv: no full_score column"):
        operating_points.load_sweeps([path])


def test_single_exit_runs_have_one_point_and_no_knob():
    rows = sweep_rows(
        "news", "static-2", 1, [(np.nan, 0.7, 3.0)], [(np.nan, 0.68, 3.0)], policy="single-exit"
    )
    points = operating_points.operating_points(pd.DataFrame(rows), 0.01)
    assert np.isnan(points.threshold[0]) and points.test_score[0] == 0.68


def test_dev_and_test_must_share_the_knob_grid(sweeps):
    broken = sweeps.copy()
    broken.loc[broken.split == "test", "threshold"] += 1
    with pytest.raises(DataError, match="different knob grids"):
        operating_points.operating_points(broken, 0.01)


def test_summary_and_markdown_report_mean_and_spread_over_seeds(sweeps):
    summary = results.summary_table(operating_points.operating_points(sweeps, 0.01))
    row = summary.iloc[0]
    assert row.seeds == 2
    assert row.test_score_mean == pytest.approx(0.86)
    text = results.results_markdown(summary, 0.01, "Results")
    assert text.startswith("# Results\n")
    assert "86.0 ± 1.4" in text  # (87, 85) x 100: mean 86, sample std 1.41
    assert "1.60 ± 0.00×" in text


def test_criteria_select_each_methods_own_policy_and_the_oracle():
    frame = pd.DataFrame(
        {
            "method": ["a", "a", "a", "b", "s"],
            "policy": ["entropy", "patience", "oracle", "patience", "single-exit"],
        }
    )
    chosen = results.select_criteria(frame, {"a": "entropy", "b": "patience"})
    assert chosen.policy.tolist() == ["entropy", "oracle", "patience", "single-exit"]


def test_missing_sweep_table_is_named(tmp_path):
    with pytest.raises(DataError, match="nope.tsv"):
        operating_points.load_sweeps([tmp_path / "nope.tsv"])


def test_tradeoff_figure_has_one_panel_per_task_and_one_colour_per_method(sweeps, tmp_path):
    other = sweeps.assign(task="headlines", method="other")
    static = pd.DataFrame(
        sweep_rows(
            "news", "static-3", 1, [(np.nan, 0.7, 2.0)], [(np.nan, 0.7, 2.0)], policy="single-exit"
        )
    )
    data = pd.concat([sweeps, other, sweeps.assign(method="other"), static])
    points = operating_points.operating_points(data, 0.01)
    for x in ("speedup", "avg_flops"):
        fig = plots.tradeoff_figure(
            data, "test", {"joint": "entropy", "other": "entropy"}, ["static-3"], x=x, points=points
        )
        assert sorted(ax.get_title() for ax in fig.axes) == ["headlines", "news"]
    palette = plots.method_palette(["other", "joint", "other"])
    assert list(palette) == ["joint", "other"] and palette["joint"] != palette["other"]
    plots.save_figure(fig, tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    curve = plots.curve_points(sweeps, "test")  # averaged over seeds per threshold
    assert curve.score.tolist() == pytest.approx([0.87, 0.86, 0.79, 0.44])


def test_method_roles_split_criteria_and_static_baselines():
    info, criteria, static = roles.method_roles(
        '{"d": {"recipe": "deebert", "criterion": "entropy", "static": false},'
        ' "s-1": {"recipe": "static", "criterion": null, "static": true}}'
    )
    assert criteria == {"d": "entropy"} and static == ["s-1"] and set(info) == {"d", "s-1"}
