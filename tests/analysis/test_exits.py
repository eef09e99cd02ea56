import matplotlib
import pandas as pd
import pytest
from fake_runs import make_run

from early_exit.analysis import exits
from early_exit.support.errors import DataError

matplotlib.use("Agg")

LABELS = [0, 1, 2, 0]
# per example, the prediction of exits 1, 2, 3; with patience t = 1 (two exits in a row
# agree) they leave at layers 2, 3, 3, 2, the last of them wrongly
PREDS = [[0, 0, 0], [0, 1, 1], [1, 0, 2], [1, 1, 1]]
PATIENCE = {"values": "all"}


def points(run, threshold, policy="patience"):
    return pd.DataFrame(
        [
            {
                "task": run.task,
                "method": run.method,
                "seed": run.seed,
                "policy": policy,
                "threshold": threshold,
            }
        ]
    )


def test_every_exit_is_scored_on_its_own():
    scores = exits.exit_scores([make_run(PREDS, LABELS, [1, 2, 3])], "test")
    assert scores.exit_layer.tolist() == [1, 2, 3]
    assert scores.score.tolist() == pytest.approx([0.25, 0.5, 0.75])


def test_exit_distribution_splits_each_exit_into_correct_and_incorrect():
    run = make_run(PREDS, LABELS, [1, 2, 3])
    dist = exits.exit_distribution(run, "patience", PATIENCE, "test", chosen=1.0)
    first = dist[dist.knob == 0].set_index(["exit_layer", "outcome"]).share
    assert first[(1, "correct")] == 0 and first[(1, "incorrect")] == 0
    assert first[(2, "correct")] == 0.25 and first[(2, "incorrect")] == 0.25
    assert first[(3, "correct")] == 0.5 and first[(3, "incorrect")] == 0
    assert dist.groupby("knob").share.sum().tolist() == pytest.approx([1.0, 1.0])
    assert dist[dist.chosen].threshold.unique().tolist() == [1.0]
    summary = exits.knob_summary(dist).set_index("knob")
    assert summary.accuracy[0] == pytest.approx(0.75)
    assert summary.speedup[0] == pytest.approx(3 / 2.5)  # half at layer 2, half at layer 3
    assert summary.chosen_by.tolist() == [1, 0]


def test_the_chosen_knob_must_be_on_the_grid():
    run = make_run(PREDS, LABELS, [1, 2, 3])
    with pytest.raises(DataError, match="not on the knob grid"):
        exits.exit_distribution(run, "patience", PATIENCE, "test", chosen=7.0)


def test_distributions_use_each_methods_own_criterion_and_skip_single_exits():
    runs = [make_run(PREDS, LABELS, [1, 2, 3]), make_run([[0]] * 4, LABELS, [3], method="s")]
    chosen = pd.concat([points(runs[0], 2.0), points(runs[0], 0.5, "entropy")])
    dist = exits.exit_distributions(
        runs, {"m": "patience", "s": "entropy"}, {"patience": PATIENCE}, chosen, "test"
    )
    assert set(dist.method) == {"m"} and set(dist.policy) == {"patience"}
    assert dist[dist.chosen].threshold.unique().tolist() == [2.0]
    assert exits.exit_distributions(runs[1:], {"s": "entropy"}, {}, chosen, "test").empty
    figures = exits.exit_distribution_figures(dist, ["m", "x"], {"m": "C0"}, "test")
    assert "no multi-exit run" in figures["x"].axes[0].texts[0].get_text()
    assert len(figures["m"].axes) == 2  # t = 1 and t = 2


def test_knobs_shown_spread_over_the_grid_and_include_the_chosen_one():
    assert exits.knobs_to_show(11, [5], n=4) == [0, 3, 5, 7, 10]
    assert exits.knobs_to_show(11, [4]) == [0, 4, 5, 10]
    assert exits.knobs_to_show(2, [0]) == [0, 1]


def test_figures_have_a_panel_per_task_and_knob():
    runs = [
        make_run(PREDS, LABELS, [1, 2, 3], task=task, seed=seed)
        for task in ("news", "headlines")
        for seed in (1, 2)
    ]
    chosen = pd.concat([points(run, 1.0) for run in runs])
    dist = exits.exit_distributions(runs, {"m": "patience"}, {"patience": PATIENCE}, chosen, "test")
    fig = exits.exit_distribution_figure(dist, "C0", "test")
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert len(titles) == 4  # 2 tasks x 2 patience values
    assert "$t$ = 1 ★2/2\n75.0% · 1.20×" in titles
    single = [
        make_run([[0]] * 4, LABELS, [2], method="s"),
        make_run([[1]] * 4, LABELS, [3], method="f"),
    ]
    scores = exits.exit_scores(runs + single, "test")
    fig = exits.exit_scores_figure(scores, ["s", "f"], {"m": "C0"}, "test", {"b": ["s"]})
    assert sorted(ax.get_title() for ax in fig.axes) == ["headlines", "news"]
    assert fig.axes[0].lines[-1].get_ydata().tolist() == [50.0]  # static: 2 of 4, x100
    # the fine-tuned "f" (another backbone's full depth) is not on the static line


def test_panel_titles_render_the_knobs_symbol():
    """BERxiT's panels said `\\tau = 0.000`: the symbol is mathtext, drawn as τ."""
    from matplotlib.mathtext import MathTextParser

    from early_exit.analysis.exits import _knob_label

    label = _knob_label("learned", 0.5)
    assert label.startswith("$\\tau$ = ")
    assert "\\tau" not in label.replace("$\\tau$", "")  # no bare LaTeX outside mathtext
    MathTextParser("path").parse(label.split(" = ")[0])  # matplotlib can draw it
    assert _knob_label("entropy", 0.25).startswith("$S$ = ")
