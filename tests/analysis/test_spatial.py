"""Score against parameters and FLOPs: the points each method contributes and the Pareto front."""

import numpy as np
import pandas as pd
import pytest

from early_exit.analysis.spatial import cost_points, pareto_front, spatial_figure
from early_exit.support.errors import DataError


def sweep_rows(method, policy, thresholds, scores, flops, params, seed=1, split="test"):
    return pd.DataFrame(
        {
            "task": "news",
            "method": method,
            "seed": seed,
            "split": split,
            "policy": policy,
            "threshold": thresholds,
            "metric": "accuracy",
            "score": scores,
            "avg_flops": flops,
            "num_parameters": params,
        }
    )


@pytest.fixture
def sweeps():
    return pd.concat(
        [
            sweep_rows("big", "entropy", [0.1, 0.5], [0.9, 0.8], [6e9, 3e9], 20e6),
            sweep_rows("big", "patience", [1, 2], [0.1, 0.1], [1e9, 2e9], 20e6),
            sweep_rows("slim", "entropy", [0.1, 0.5], [0.86, 0.84], [2e9, 1e9], 10e6, seed=1),
            sweep_rows("slim", "entropy", [0.1, 0.5], [0.88, 0.82], [2e9, 1e9], 10e6, seed=2),
            sweep_rows("static-1", "single-exit", [np.nan], [0.5], [1e9], 8e6),
            sweep_rows("big", "entropy", [0.1, 0.5], [0.0, 0.0], [6e9, 3e9], 20e6, split="dev"),
        ],
        ignore_index=True,
    )


def test_points_are_each_method_under_its_criterion_seeds_averaged(sweeps):
    points = cost_points(sweeps, "test", {"big": "entropy", "slim": "entropy"}, ["static-1"])
    assert sorted(points.method.unique()) == ["big", "slim", "static-1"]
    assert set(points.policy) == {"entropy", "single-exit"}  # big's patience rows are dropped
    slim = points[points.method == "slim"].sort_values("threshold")
    assert slim.score.tolist() == pytest.approx([0.87, 0.83])
    assert (points[points.method == "big"].score > 0.5).all()  # the test split only


def test_pareto_front_keeps_only_unbeaten_points():
    points = pd.DataFrame({"x": [1, 2, 2, 3, 4], "score": [0.5, 0.4, 0.8, 0.7, 0.9]})
    front = pareto_front(points, "x")
    assert front.x.tolist() == [1, 2, 4] and front.score.tolist() == [0.5, 0.8, 0.9]


def test_slenderization_moves_the_front(sweeps):
    points = cost_points(sweeps, "test", {"big": "entropy", "slim": "entropy"}, ["static-1"])
    with_slim = pareto_front(points, "num_parameters")
    without = pareto_front(points[points.method != "slim"], "num_parameters")
    assert "slim" in set(with_slim.method) and "slim" not in set(without.method)
    fig = spatial_figure(points, ["slim"], "test")
    axes = fig.axes
    assert len(axes) == 2 and axes[0].get_xlabel().startswith("parameters")
    # each panel: the front with and without the slenderized method
    assert all(len(ax.lines) == 2 for ax in axes)
    assert axes[1].lines[0].get_xdata().min() == pytest.approx(1.0)  # GFLOPs
    # scores x100, as in every table
    assert axes[0].get_ylabel() == "accuracy ×100 (test)"
    assert axes[0].lines[0].get_ydata().max() == pytest.approx(90.0)


def test_sweeps_without_parameter_counts_are_named(sweeps):
    with pytest.raises(DataError, match="no num_parameters column"):
        cost_points(sweeps.drop(columns="num_parameters"), "test", {}, [])
    sweeps.loc[sweeps.method == "slim", "num_parameters"] = np.nan
    with pytest.raises(DataError, match=r"\['slim'\]: rerun their train"):
        cost_points(sweeps, "test", {}, [])


def test_a_family_of_k_layer_models_is_one_legend_entry_with_k_at_each_point(sweeps):
    """static-1 and static-2 share a colour and a marker: the legend names the family once
    and each of its points says its k (before, the legend showed identical squares)."""
    more = sweep_rows("static-2", "single-exit", [np.nan], [0.6], [2e9], 9e6)
    criteria = {"big": "entropy", "slim": "entropy"}
    points = cost_points(pd.concat([sweeps, more]), "test", criteria, [])
    info = {
        "big": {"family": "big", "exit_layers": None},
        "slim": {"family": "slim", "exit_layers": None},
        "static-1": {"family": "static", "exit_layers": [1]},
        "static-2": {"family": "static", "exit_layers": [2]},
    }
    fig = spatial_figure(points, ["slim"], "test", info)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[:3] == ["big", "slim", "static-k (k labelled)"]
    for ax in fig.axes:
        assert sorted(t.get_text() for t in ax.texts) == ["1", "2"]
    plain = spatial_figure(points, ["slim"], "test")  # no family info: one entry each
    assert "static-2" in [t.get_text() for t in plain.legends[0].get_texts()]
    assert not plain.axes[0].texts
