"""SplitEE summaries and figures from simulation tables of a tiny synthetic run."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from early_exit.analysis import splitee_results as analysis
from early_exit.exits.splitee import SplitEESettings, splitee_file
from early_exit.exits.stored import load_exit_logits, write_exit_outputs

# lambda as given: stated for the 4 layers of these runs
SETTINGS = SplitEESettings(
    offload_costs=(0.1, 0.5), lambda_=0.1, lambda_depth=4, orders=3, ucb_c=1.0
)


@pytest.fixture
def tables(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    logits = rng.normal(size=(300, 4, 2))
    logits[np.arange(300), :, labels] += np.array([0.5, 1.0, 2.0, 3.0])
    write_exit_outputs(
        tmp_path / "l.npz",
        {"exit_layers": np.arange(1, 5), "test_logits": logits, "test_labels": labels},
    )
    assert load_exit_logits(tmp_path / "l.npz")["test_logits"].shape == (300, 4, 2)
    labels_ = {"source": "a", "target": "b", "method": "m", "seed": 1}
    splitee_file(
        tmp_path / "l.npz", tmp_path / "t.tsv", tmp_path / "r.tsv", SETTINGS, 0.8, "test", labels_
    )
    return pd.read_csv(tmp_path / "t.tsv", sep="\t"), pd.read_csv(tmp_path / "r.tsv", sep="\t")


def test_table_has_every_policy_order_and_cost(tables):
    table, regret = tables
    assert len(table) == 2 * 3 * (2 + 2 + 4 + 1)  # o x orders x (bandits, final, best, fixed, ee)
    assert set(regret.policy) == {"splitee", "splitee-s"}
    final = table[table.policy == "final-layer"]
    assert np.allclose(final.cost_reduction, 0.0) and np.allclose(final.avg_cost, 0.4)


def test_summary_drop_is_against_final_layer_of_the_same_order(tables):
    summ = analysis.summary(tables[0])
    final = summ[summ.policy == "final-layer"]
    assert np.allclose(final.accuracy_drop, 0.0) and np.allclose(final.accuracy_std, 0.0)
    row = summ[(summ.policy == "fixed-1") & (summ.offload_cost == 0.1)].iloc[0]
    f = final[final.offload_cost == 0.1].iloc[0]
    assert row.accuracy_drop == pytest.approx(100 * (f.accuracy - row.accuracy))
    text = analysis.splitee_markdown(summ)
    assert "o = 0.5" in text and "a → b" in text and "splitee-s" in text


def test_figures_draw(tables):
    table, regret = tables
    assert analysis.regret_figure(regret).axes
    assert analysis.tradeoff_figure(analysis.summary(table)).axes


def test_several_alphas_layer_cost_and_the_headline_column(tmp_path):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 200)
    logits = rng.normal(size=(200, 4, 2))
    logits[np.arange(200), :, labels] += np.array([0.5, 1.0, 2.0, 3.0])
    write_exit_outputs(
        tmp_path / "l.npz",
        {
            "exit_layers": np.arange(1, 5),
            "num_layers": np.array(4),
            "test_logits": logits,
            "test_labels": labels,
        },
    )
    key = {"source": "a", "target": "b", "method": "m", "seed": 1}
    settings = dataclasses.replace(SETTINGS, lambda_depth=12)
    table = splitee_file(
        tmp_path / "l.npz",
        tmp_path / "t.tsv",
        tmp_path / "r.tsv",
        settings,
        [0.6, 0.9],
        "test",
        key,
    )
    assert sorted(table.alpha.unique()) == [0.6, 0.9]
    assert np.allclose(table.layer_cost, 0.1 * 12 / 4)  # lambda x 12 / L
    final = table[table.policy == "final-layer"]
    assert np.allclose(final.avg_cost, 0.3 * 4)  # a full pass costs 1.2, as on 12 layers
    summ = analysis.summary(table)
    assert len(summ) == 2 * 2 * (2 + 2 + 4 + 1)  # alpha x o x policies
    expected = analysis.headline(summ.cost_reduction, summ.accuracy_drop, summ.offload_rate)
    assert (summ.headline == expected).all()
    assert not summ[summ.policy == "final-layer"].headline.any()  # no cost reduction
    text = analysis.splitee_markdown(summ)
    assert "| Headline" in text and "headline met by" in text and "α" in text
    assert analysis.tradeoff_figure(summ).axes
    assert analysis.regret_figure(pd.read_csv(tmp_path / "r.tsv", sep="\t")).axes


def test_headline_condition_on_hand_made_numbers():
    reduction, drop = pd.Series([0.6, 0.6, 0.4, 0.6]), pd.Series([1.9, 2.0, 0.0, 0.0])
    offloaded = pd.Series([0.5, 0.5, 0.5, 1.0])  # the last offloads everything: not counted
    assert analysis.headline(reduction, drop, offloaded).tolist() == [True, False, False, False]


def test_offloading_everything_is_named_not_counted():
    inside = {"headline": False, "cost_reduction": 0.6, "accuracy_drop": 0.0}
    assert analysis.headline_text(pd.Series({**inside, "offload_rate": 1.0})) == (
        "no (offloads all)"
    )
    assert analysis.headline_text(pd.Series({**inside, "offload_rate": 0.5})) == "no"


def test_accuracy_is_x100_in_the_report_table(tables):
    text = analysis.splitee_markdown(analysis.summary(tables[0]))
    rows = [line.split("|") for line in text.splitlines() if line.startswith("| a → b")]
    accuracy = [cells[5].strip() for cells in rows]  # Stream, Method, α, Policy, Accuracy
    assert "Accuracy ×100" in text and accuracy
    assert all("%" not in a and float(a.split(" ± ")[0]) > 1 for a in accuracy)
