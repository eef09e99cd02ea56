"""Tests that hold their level: known answers for McNemar, Holm and the sign-flip test,
the false-positive rate under the null, the family table, and its figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bootstrap_runs import POLICIES, make_run, stored
from scipy.stats import binom
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests

from early_exit.analysis import comparisons, plots
from early_exit.analysis.bootstrap import Settings, p_value
from early_exit.analysis.operating_point_tables import uncertainty_tables
from early_exit.analysis.significance import holm, mcnemar, paired_permutation, sign_flip


def correctness(a_only: int, b_only: int, both: int = 40, neither: int = 10):
    a = np.array([1] * a_only + [0] * b_only + [1] * both + [0] * neither, dtype=bool)
    b = np.array([0] * a_only + [1] * b_only + [1] * both + [0] * neither, dtype=bool)
    return a, b


@pytest.mark.parametrize(("a_only", "b_only", "expected"), [(5, 0, 0.0625), (8, 1, 0.0390625)])
def test_exact_mcnemar_on_hand_tables_matches_statsmodels(a_only, b_only, expected):
    a, b = correctness(a_only, b_only)
    table = [[40, a_only], [b_only, 10]]
    assert mcnemar(a, b) == pytest.approx(expected, abs=1e-12)
    assert mcnemar(a, b) == pytest.approx(sm_mcnemar(table, exact=True).pvalue, abs=1e-12)
    assert mcnemar(b, a) == mcnemar(a, b)
    # the Wald z-test on the standard error this replaced rejects both at 0.05
    d = a.astype(float) - b
    se = d.std(ddof=1) / np.sqrt(len(d))
    assert p_value(d.mean(), np.random.default_rng(0).normal(d.mean(), se, 20000)) < 0.05


def test_exact_mcnemar_by_hand_and_without_discordant_pairs():
    a, b = correctness(10, 3, both=50, neither=7)
    assert mcnemar(a, b) == pytest.approx(2 * (1 + 13 + 78 + 286) / 2**13)
    assert mcnemar(a, a) == 1.0


def test_holm_matches_multipletests_and_skips_nan():
    p = np.random.default_rng(1).uniform(0, 0.2, 12)
    np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1], rtol=0, atol=1e-15)
    adjusted = holm([0.01, 0.04, 0.03, 0.005, np.nan])
    # sorted 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> kept monotone: 0.06
    np.testing.assert_allclose(adjusted[:4], [0.03, 0.06, 0.06, 0.02])
    assert np.isnan(adjusted[4])
    assert holm([0.6, 0.9]).tolist() == [1.0, 1.0]


def test_sign_flip_is_exact_on_small_samples_and_deterministic():
    # five positive differences: 2 of the 32 sign patterns are as extreme, p = 1/16
    assert sign_flip(np.ones(5), "x") == pytest.approx(0.0625)
    assert sign_flip(np.array([1, 1, 1, 1, 1, 0, 0.0]), "x") == pytest.approx(0.0625)
    assert sign_flip(np.zeros(10), "x") == 1.0
    assert sign_flip(np.array([0, 0, 1.0]), "x") == 1.0
    d = np.random.default_rng(2).normal(0.1, 1, 300)
    assert sign_flip(d, "y") == sign_flip(d, "y")


def test_paired_permutation_of_a_metric_sees_a_real_difference():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 200)
    good = np.where(rng.random(200) < 0.9, labels, 1 - labels)
    poor = np.where(rng.random(200) < 0.6, labels, 1 - labels)
    # the two-sided floor of 199 resamples
    assert paired_permutation("mcc", labels, good, poor, "t", resamples=199) == 2 / 200
    assert paired_permutation("mcc", labels, good, good, "t") == 1.0
    right, wrong = np.flatnonzero(good == labels), np.flatnonzero(good != labels)
    close = good.copy()
    close[[*right[:3], *wrong[:3]]] ^= 1  # three answers worse, three better
    assert paired_permutation("mcc", labels, good, close, "t", resamples=199) > 0.05


def test_false_positive_rate_under_the_null_is_at_most_the_level():
    """Identical methods, each example's correctness flipped at random for either: over
    many simulated tables, exact McNemar rejects at most 5% of the time, and Holm over
    families of six such tests keeps the family-wise rate at most 5%."""
    rng = np.random.default_rng(4)
    tables, n, alpha = 3600, 150, 0.05
    base = rng.random((tables, n)) < 0.8
    flip_a, flip_b = rng.random((tables, n)) < 0.1, rng.random((tables, n)) < 0.1
    a, b = base ^ flip_a, base ^ flip_b
    a_only, b_only = (a & ~b).sum(1), (~a & b).sum(1)
    # vectorised exact McNemar (the same binomial tail), checked against ours on a sample
    k, m = np.minimum(a_only, b_only), a_only + b_only
    p = np.where(m > 0, np.minimum(1.0, 2 * binom.cdf(k, np.maximum(m, 1), 0.5)), 1.0)
    for i in range(0, tables, 360):
        assert p[i] == pytest.approx(mcnemar(a[i], b[i]), abs=1e-12)
    slack = 2 * np.sqrt(alpha * (1 - alpha) / tables)
    assert (p < alpha).mean() <= alpha + slack
    # Holm rejects something in a family iff its smallest p-value times 6 is below alpha
    families = p.reshape(-1, 6)
    assert holm(families[0]).min() == pytest.approx(min(1, 6 * families[0].min()))
    fwer = (6 * families.min(1) < alpha).mean()
    assert fwer <= alpha + 2 * np.sqrt(alpha * (1 - alpha) / len(families))
    # the z-test on the standard error rejects more often on the same tables
    d = a.astype(float) - b
    se = d.std(1, ddof=1) / np.sqrt(n)
    from scipy.stats import norm

    z = np.where(se > 0, 2 * norm.sf(np.abs(d.mean(1)) / np.where(se > 0, se, 1)), 1.0)
    assert (z < alpha).mean() > (p < alpha).mean()


def test_sign_flip_false_positive_rate_under_a_symmetric_null():
    rng = np.random.default_rng(5)
    draws = rng.choice([-1, -0.5, 0, 0.5, 1], (200, 7))  # at most 2^7 patterns: exact
    rejected = [sign_flip(d, "null", i) < 0.05 for i, d in enumerate(draws)]
    assert np.mean(rejected) <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 200)
    # and on larger samples, with random sign patterns (9999)
    wide = [sign_flip(rng.choice([-1, 0, 1], 150), "wide", i) < 0.05 for i in range(40)]
    assert np.mean(wide) <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 40)


INFO = {
    "ee": {"criterion": "entropy", "static": False, "backbone": "b", "curve": False},
    "ft": {"criterion": None, "static": True, "backbone": "b", "curve": True, "full_model": True},
    "half": {"criterion": None, "static": True, "backbone": "b", "curve": True},
}
for _i in INFO.values():
    _i.setdefault("full_model", False)
    _i["reference"] = "b"


def test_family_table_one_row_per_comparison(tmp_path):
    sweeps = [
        make_run(tmp_path, "t", "ee", 1, stored(seed=1)),
        make_run(tmp_path, "t", "ft", 1, stored(seed=2, exits=(4,), skill=(3.0,))),
        make_run(tmp_path, "t", "half", 1, stored(seed=3, exits=(2,), skill=(0.8,))),
    ]
    tables = uncertainty_tables(sweeps, {"t": POLICIES}, Settings(resamples=200), 0.01, INFO)
    family = tables["significance"]
    assert family.method.unique().tolist() == ["ee"]  # only early-exit methods are tested
    got = set(zip(family.comparison, family.quantity, strict=True))
    assert got == {
        ("drop", "score"),
        ("vs fine-tuning", "score"),
        ("vs fine-tuning", "flops"),
        ("vs static curve", "score"),
    }
    assert (family.family == "t · test").all() and (family.family_size == 4).all()
    np.testing.assert_allclose(family.p_adjusted, multipletests(family.p_value, method="holm")[1])
    assert (family.significant == (family.p_adjusted < 0.05)).all()
    by = family.set_index(["comparison", "quantity"])
    assert by.loc[("drop", "score"), "test"] == "McNemar exact"
    assert by.loc[("vs fine-tuning", "score"), "test"] == "McNemar exact"
    assert by.loc[("vs fine-tuning", "flops"), "test"] == "sign-flip permutation"
    # the drop is the points table's, with the same sign
    point = tables["points"].query("method == 'ee' and policy == 'entropy'").iloc[0]
    assert by.loc[("drop", "score"), "value"] == pytest.approx(point.test_drop)
    # cheaper than fine-tuning on every example: a clear cost difference
    assert by.loc[("vs fine-tuning", "flops"), "value"] < 0
    assert by.loc[("vs fine-tuning", "flops"), "p_value"] < 0.01
    for row in family.itertuples():
        assert row.value_lo <= row.value_hi
    # markdown names each comparison once, with the family and the tests
    text = comparisons.differences_markdown(tables["summary"], family, {}, "T", "cov")
    assert "Drop: own full model" in text and "t · test: 4 tests" in text
    assert "McNemar exact" in text and "| ee " in text
    fig = comparisons.significance_figure(family, 0.05)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["ee"]  # a row per method, its comparisons side by side in it
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:3] == ["drop", "vs fine-tuning", "vs static curve"]
    assert fig.get_size_inches().tolist() == list(plots.SLIDE_FIGURE_IN)  # as shown


def test_a_run_whose_exits_agree_has_a_drop_of_exactly_zero(tmp_path):
    arrays = stored(seed=6)
    arrays["test_logits"][:] = arrays["test_logits"][:, -1:, :]  # every exit answers alike
    arrays["dev_logits"][:] = arrays["dev_logits"][:, -1:, :]
    sweeps = [make_run(tmp_path, "t", "ee", 1, arrays)]
    info = {"ee": INFO["ee"]}
    tables = uncertainty_tables(sweeps, {"t": POLICIES}, Settings(resamples=100), 0.01, info)
    drop = tables["significance"].iloc[0]
    assert drop.comparison == "drop" and drop.value == 0
    # Agresti-Min's interval of no discordant pair: around 0, not a point
    assert drop.value_lo == pytest.approx(-drop.value_hi) and 0 < drop.value_hi < 0.02
    assert drop.p_value == 1.0 and not drop.significant


def test_empty_family_and_figure_without_rows():
    empty = pd.DataFrame(columns=["task", "test_split", "quantity"])
    assert comparisons.panels(empty) == []
    comparisons.significance_figure(empty, 0.05)


def test_several_seeds_are_tested_on_seed_mean_differences(tmp_path):
    skills = {1: (0.5, 1.5, 3.0), 2: (0.1, 0.2, 0.4)}  # a good and a poor training run
    sweeps = [make_run(tmp_path, "t", "ee", s, stored(seed=s, skill=k)) for s, k in skills.items()]
    sweeps.append(make_run(tmp_path, "t", "ft", 1, stored(seed=9, exits=(4,), skill=(3.0,))))
    info = {k: INFO[k] for k in ("ee", "ft")}
    kw = dict(policies={"t": POLICIES}, settings=Settings(resamples=200), max_drop=0.01, info=info)
    family = uncertainty_tables(sweeps, **kw)["significance"].set_index(["comparison", "quantity"])
    assert (family.seeds == 2).all()
    assert family.loc[("drop", "score"), "test"] == "sign-flip permutation"
    assert family.loc[("vs fine-tuning", "score"), "test"] == "sign-flip permutation"
    # the t-interval over two seeds that differ spans what they disagree on
    one = uncertainty_tables([sweeps[0], sweeps[2]], **kw)["significance"]
    one = one.set_index(["comparison", "quantity"])
    key = ("vs fine-tuning", "score")
    width = {
        n: f.loc[key, "value_hi"] - f.loc[key, "value_lo"] for n, f in (("2", family), ("1", one))
    }
    assert width["2"] > 2 * width["1"]


def test_guarantee_table_shows_both_knobs(tmp_path):
    from early_exit.exits.operating_points import Guarantee
    from early_exit.support.errors import DataError

    sweeps = [make_run(tmp_path, "t", "ee", 1, stored(seed=1, n=300))]
    kw = dict(policies={"t": POLICIES}, settings=Settings(resamples=50), max_drop=0.01)
    points = uncertainty_tables(sweeps, info={"ee": INFO["ee"]}, guarantee=Guarantee(), **kw)
    points = points["points"]
    text = comparisons.guarantee_markdown(points, {"ee": "entropy"}, [], 0.01, {}, "G")
    row = points.query("policy == 'entropy'").iloc[0]
    assert "| ee " in text and f"{row.test_speedup:.2f}×" in text
    assert f"{row.ltt_test_speedup:.2f}×" in text and "at most 5%" in text
    assert f"| {100 * row.dev_knob_agreement:.0f}% " in text
    with pytest.raises(DataError, match="rerun rule operating_points"):
        comparisons.guarantee_markdown(points.drop(columns="ltt_certified"), {}, [], 0.01, {}, "G")
