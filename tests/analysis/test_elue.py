import matplotlib
import numpy as np
import pandas as pd
import pytest
from sweeps import sweep_rows

from early_exit.analysis import elue, plots

matplotlib.use("Agg")

FULL = 1.0  # speed-up of a full-depth (6-layer) model


def single(task, method, score, speedup, seed=1):
    return sweep_rows(
        task, method, seed, [(np.nan, score, speedup)], [(np.nan, score, speedup)], "single-exit"
    )


def info_entry(recipe, backbone, reference, criterion=None):
    return {
        "recipe": recipe,
        "criterion": criterion,
        "static": criterion is None,
        "backbone": backbone,
        "curve": recipe == "static",
        "reference": reference,
    }


INFO = {
    "static-1": info_entry("static", "elastic", "elastic"),
    "static-3": info_entry("static", "elastic", "elastic"),
    "static-6": info_entry("static", "elastic", "elastic"),
    "finetune-roberta": info_entry("finetune", "roberta", "elastic"),
    "m": info_entry("joint", "elastic", "elastic", "entropy"),
}


def curve_rows(task="t"):
    return [
        r for k, s in ((1, 0.5), (3, 0.7), (6, 0.8)) for r in single(task, f"static-{k}", s, 6 / k)
    ]


def test_elue_score_of_a_hand_made_curve():
    curve = (np.array([1.0, 2.0, 4.0]), np.array([0.5, 0.7, 0.8]))
    # on the curve, above it by 5 points at f=3 (ref 0.75), and two points outside the range
    score, outside = elue.elue_score(np.array([2.0, 3.0]), np.array([0.7, 0.8]), curve)
    assert score == pytest.approx(2.5) and outside == 0
    score, outside = elue.elue_score(np.array([0.5, 8.0]), np.array([0.45, 0.9]), curve)
    assert outside == 2
    assert score == pytest.approx(100 * ((0.45 - 0.5) + (0.9 - 0.8)) / 2)  # flat extension


def test_a_static_models_own_point_is_on_its_curve_not_outside_it():
    # FLOPs not whole numbers: rounding the method's point but not the curve put the
    # curve's last model just outside its own curve
    rows = [r for k, s in ((1, 0.5), (2, 0.7)) for r in single("t", f"static-{k}", s, 6 / k)]
    data = pd.DataFrame(rows).assign(avg_flops=lambda t: t.avg_flops + 0.3)
    info = {**INFO, "static-2": info_entry("static", "elastic", "elastic")}
    table = elue.elue_table(data, info).set_index("method")
    assert (table.outside_range == 0).all() and (table.elue == 0.0).all()


def test_elue_table_scores_static_models_zero_and_methods_against_them():
    dynamic = sweep_rows(
        "t", "m", 1, [(0, 0.8, 1.0), (1, 0.7, 2.0)], [(0, 0.8, 1.0), (1, 0.7, 2.0)]
    )
    table = elue.elue_table(pd.DataFrame(curve_rows() + dynamic), INFO).set_index("method")
    assert table.loc["static-3", "elue"] == pytest.approx(0.0)
    # m at 2x speed-up = 3 layers' FLOPs scores 0.7, exactly the static 3-layer model
    assert table.loc["m", "elue"] == pytest.approx(0.0) and table.loc["m", "points"] == 2
    assert (table.reference == "elastic").all()
    assert "| m " in elue.elue_markdown(table.reset_index(), "ELUE")


def test_a_second_backbones_fine_tuned_run_stays_off_the_elue_curve():
    # RoBERTa fine-tuned at about full-depth FLOPs (1% more), far better than
    # ElasticBERT-6: on the old code it joined the curve as its last point, so the
    # full-depth point of `m` (exit heads: also 1% more) was compared with RoBERTa's 0.95
    deeper = 6 / 6.06
    rows = curve_rows() + single("t", "finetune-roberta", 0.95, deeper)
    rows += sweep_rows("t", "m", 1, [(0, 0.8, deeper)], [(0, 0.8, deeper)])
    table = elue.elue_table(pd.DataFrame(rows), INFO).set_index("method")
    assert table.loc["m", "elue"] == pytest.approx(0.0)  # ElasticBERT-6's score, flat beyond
    assert table.loc["m", "outside_range"] == 1
    assert table.loc["finetune-roberta", "elue"] == pytest.approx(15.0)  # scored, not a point
    assert elue.used_curves(INFO) == {"elastic": ["static-1", "static-3", "static-6"]}


def test_each_backbone_can_be_scored_against_its_own_curve():
    info = {
        **INFO,
        "static-r-1": info_entry("static", "roberta", "roberta"),
        "static-r-6": info_entry("static", "roberta", "roberta"),
        "finetune-roberta": info_entry("finetune", "roberta", "roberta"),
    }
    rows = curve_rows() + single("t", "finetune-roberta", 0.95, FULL)
    rows += single("t", "static-r-1", 0.6, 6.0) + single("t", "static-r-6", 0.9, FULL)
    table = elue.elue_table(pd.DataFrame(rows), info).set_index("method")
    assert table.loc["finetune-roberta", "reference"] == "roberta"
    assert table.loc["finetune-roberta", "elue"] == pytest.approx(5.0)  # 0.95 - 0.90
    assert table.loc["static-6", "elue"] == pytest.approx(0.0)


def test_elue_average_covers_the_six_elue_tasks_and_is_a_dash_when_one_is_missing():
    rows = []
    for task in (*elue.ELUE_TASKS, "rte"):
        rows += curve_rows(task)
        rows += sweep_rows(task, "m", 1, [(0, 0.8, 2.0)], [(0, 0.8, 2.0)])  # +10 points
    data = pd.DataFrame(rows)
    n_rows = data[(data.method == "m") & (data.task != "stsb")].assign(method="n")
    both = pd.concat([data, n_rows])
    info = {**INFO, "n": info_entry("joint", "elastic", "elastic", "entropy")}
    table = elue.elue_table(both, info)
    wide = elue.elue_wide(table).set_index("method")
    assert list(wide.columns[2:]) == [*elue.ELUE_TASKS, elue.AVERAGE, "rte"]
    assert wide.loc["m", elue.AVERAGE] == pytest.approx(10.0)
    assert np.isnan(wide.loc["n", elue.AVERAGE])  # STS-B missing: no average
    text = elue.elue_markdown(table, "ELUE")
    n_row = next(line for line in text.splitlines() if line.startswith("| n "))
    assert n_row.split("|")[-3].strip() == "–"  # the average column, then rte
    assert "six ELUE tasks" in text


def test_tasks_outside_elue_get_their_own_columns_and_no_average():
    rows = curve_rows("news") + sweep_rows("news", "m", 1, [(0, 0.8, 2.0)], [(0, 0.8, 2.0)])
    table = elue.elue_table(pd.DataFrame(rows), INFO)
    wide = elue.elue_wide(table)
    assert elue.AVERAGE not in wide.columns and "news" in wide.columns
    assert "no ELUE average" in elue.elue_markdown(table, "ELUE")


def test_tradeoff_figure_draws_only_the_reference_backbones_static_curve():
    rows = curve_rows() + single("t", "finetune-roberta", 0.95, FULL)
    rows += sweep_rows("t", "m", 1, [(0, 0.8, 1.0), (1, 0.7, 2.0)], [(0, 0.8, 1.0), (1, 0.7, 2.0)])
    static = [m for m, i in INFO.items() if i["static"]]
    fig = plots.tradeoff_figure(
        pd.DataFrame(rows), "test", {"m": "entropy"}, static, curves=elue.used_curves(INFO)
    )
    (ax,) = fig.axes
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(dashed) == 1
    # x100, as every figure and table shows scores; not RoBERTa's 95
    assert sorted(dashed[0].get_ydata()) == pytest.approx([50, 70, 80])
    assert ax.get_ylabel().endswith("×100 (test)")
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["finetune-roberta"]  # drawn as its own marker
