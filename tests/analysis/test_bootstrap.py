"""Paired bootstrap intervals from stored outputs: known answers, pairing, the dev choice
re-made per replicate, seeds, and the tables the operating_points rule writes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bootstrap_runs import POLICIES, make_run, stored

from early_exit.analysis import bootstrap, intervals
from early_exit.analysis.bootstrap import Settings
from early_exit.analysis.operating_point_tables import uncertainty_tables
from early_exit.exits.metrics import score_rows
from early_exit.exits.operating_points import choose, operating_points
from early_exit.exits.stored import write_exit_outputs
from early_exit.support.errors import DataError

INFO = {
    "a": {
        "criterion": "entropy",
        "static": False,
        "backbone": "b",
        "curve": False,
        "reference": None,
        "full_model": False,
    },
    "b": {
        "criterion": "patience",
        "static": False,
        "backbone": "b",
        "curve": False,
        "reference": None,
        "full_model": False,
    },
}


def test_percentile_interval_of_a_proportion_matches_the_binomial_one():
    n, p = 400, 0.8
    labels = np.zeros(n, dtype=int)
    preds = np.where(np.arange(n) < p * n, 0, 1)[None, :]  # 80% correct
    settings = Settings(resamples=4000, seed=3)
    idx = bootstrap.resample_indices(settings, "t", "test", n)
    reps = bootstrap.resampled_scores("accuracy", labels, preds, idx, bootstrap._counts(idx, n))
    lo, hi = bootstrap.interval(reps[:, 0], 0.95)
    half = 1.959964 * np.sqrt(p * (1 - p) / n)  # 0.0392
    assert lo == pytest.approx(p - half, abs=0.006) and hi == pytest.approx(p + half, abs=0.006)


def test_accuracy_from_counts_equals_the_metric_on_each_resample():
    rng = np.random.default_rng(0)
    labels, preds = rng.integers(0, 3, 60), rng.integers(0, 3, (4, 60))
    idx = bootstrap.resample_indices(Settings(resamples=50), "t", "dev", 60)
    fast = bootstrap.resampled_scores("accuracy", labels, preds, idx, bootstrap._counts(idx, 60))
    slow = np.stack([score_rows("accuracy", labels[i], preds[:, i]) for i in idx])
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)
    # other metrics take the per-replicate path
    f1 = bootstrap.resampled_scores("macro_f1", labels, preds, idx, None)
    assert f1.shape == (50, 4) and np.all((f1 >= 0) & (f1 <= 1))


def test_resamples_are_shared_within_a_task_and_differ_between_tasks_and_seeds():
    s = Settings(resamples=20)
    same = bootstrap.resample_indices(s, "news", "test", 30)
    assert np.array_equal(same, bootstrap.resample_indices(s, "news", "test", 30))
    assert not np.array_equal(same, bootstrap.resample_indices(s, "headlines", "test", 30))
    assert not np.array_equal(same, bootstrap.resample_indices(s, "news", "dev", 30))
    other_seed = Settings(resamples=20, seed=1)
    assert not np.array_equal(same, bootstrap.resample_indices(other_seed, "news", "test", 30))


def test_vectorised_choice_is_the_protocols():
    score = np.array([[0.90, 0.89, 0.85, 0.89], [0.80, 0.70, 0.60, 0.50]])
    speed = np.array([[1.0, 1.5, 3.0, 1.5], [1.0, 2.0, 3.0, 4.0]])
    # row 0: within 0.01 of 0.90 -> knobs 0, 1, 3; fastest 1.5 (1 and 3 tie): the first
    # row 1: nothing within 0.01 of 0.95 -> the best score, knob 0
    assert choose(score, np.array([0.90, 0.95]), speed, 0.01).tolist() == [1, 0]


def test_identical_runs_have_identical_intervals(tmp_path):
    arrays = stored(seed=1)
    sweeps = [make_run(tmp_path, "t", m, 1, arrays) for m in ("a", "b")]
    info = {"a": INFO["a"], "b": INFO["a"] | {"criterion": "entropy"}}
    tables = uncertainty_tables(sweeps, {"t": POLICIES}, Settings(resamples=200), 0.01, info)
    a, b = (tables["summary"].query(f"method == '{m}' and policy == 'entropy'") for m in "ab")
    cols = [c for c in a.columns if c.endswith(("_lo", "_hi"))]
    np.testing.assert_array_equal(a[cols].to_numpy(), b[cols].to_numpy())


def test_tables_keep_the_point_estimates_and_bracket_them(tmp_path):
    sweeps = [
        make_run(tmp_path, "t", "a", 1, stored(seed=1)),
        make_run(tmp_path, "t", "b", 1, stored(seed=2, skill=(0.2, 0.5, 1.0))),
    ]
    tables = uncertainty_tables(sweeps, {"t": POLICIES}, Settings(resamples=300), 0.01, INFO)
    points = tables["points"]
    from early_exit.exits.operating_points import load_sweeps

    plain = operating_points(load_sweeps(sweeps), 0.01)
    pd.testing.assert_frame_equal(points[plain.columns], plain)  # point estimates unchanged
    for stat in ("score", "speedup", "flops"):
        assert (points[f"test_{stat}_lo"] <= points[f"test_{stat}_hi"]).all()
    # a percentile interval around a re-chosen knob need not contain the point; on
    # these models most do
    inside = (points.test_score_lo <= points.test_score) & (
        points.test_score <= points.test_score_hi
    )
    assert inside.mean() >= 0.75
    # the good model loses at its operating point against its own full model by little:
    # the family's drop row is the points table's drop
    drop = tables["significance"].query("method == 'a' and comparison == 'drop'").iloc[0]
    row = points.query("method == 'a' and policy == 'entropy'").iloc[0]
    assert drop.value == pytest.approx(row.test_drop)
    # at a fixed knob the drop's interval is Agresti-Min's, the same in both tables
    assert (drop.value_lo, drop.value_hi) == (row.test_drop_lo, row.test_drop_hi)
    assert drop.value_lo < drop.value < drop.value_hi
    # a single-exit run is its own full model: its drop is 0, and so is its interval
    single = make_run(tmp_path, "t", "c", 1, stored(seed=3, exits=(4,), skill=(3.0,)))
    info = INFO | {"c": INFO["a"] | {"criterion": None, "static": True}}
    alone = uncertainty_tables([single], {"t": POLICIES}, Settings(100), 0.01, info)["points"]
    assert alone[["test_drop", "test_drop_lo", "test_drop_hi"]].iloc[0].tolist() == [0, 0, 0]


def test_reselection_moves_the_knob_and_fixed_selection_does_not(tmp_path):
    make_run(tmp_path, "t", "a", 1, stored(seed=4, skill=(1.0, 1.2, 1.6)))
    run = tmp_path / "t" / "a" / "seed1"
    kw = dict(policies=POLICIES, max_drop=0.01)
    moved, _ = bootstrap.run_replicates(
        run, ("t", "a", 1), settings=Settings(200, reselect_on_dev=True), **kw
    )
    fixed, _ = bootstrap.run_replicates(run, ("t", "a", 1), settings=Settings(200), **kw)
    entropy = next(r for r in moved if r.policy == "entropy")
    kept = next(r for r in fixed if r.policy == "entropy")
    assert len(np.unique(entropy.rep_chosen)) > 1
    assert np.all(kept.rep_chosen == kept.chosen) and kept.chosen == entropy.chosen
    # the choice's variability is stated either way (the default keeps the knob)
    assert kept.knobs_rechosen == len(np.unique(entropy.rep_chosen)) > 1
    assert kept.knob_agreement == pytest.approx(np.mean(entropy.rep_chosen == entropy.chosen))
    assert 0 < kept.knob_agreement < 1
    # same test resamples either way: at the common knob the replicates are identical
    same = entropy.rep_chosen == kept.chosen
    np.testing.assert_array_equal(
        entropy.at_point("test")["score"][same], kept.at_point("test")["score"][same]
    )


def test_runs_stored_in_another_order_are_aligned_by_id(tmp_path):
    arrays = stored(seed=5)
    reversed_ = stored(seed=5, order=lambda n: np.arange(n)[::-1])
    sweeps = [make_run(tmp_path, "t", "a", 1, arrays), make_run(tmp_path, "t", "b", 1, reversed_)]
    info = {"a": INFO["a"], "b": INFO["a"]}
    tables = uncertainty_tables(sweeps, {"t": POLICIES}, Settings(resamples=100), 0.01, info)
    a, b = (tables["summary"].query(f"method == '{m}'").sort_values("policy") for m in "ab")
    cols = [c for c in a.columns if c.endswith(("_lo", "_hi"))]
    np.testing.assert_array_equal(a[cols].to_numpy(), b[cols].to_numpy())  # the same examples


def test_a_run_predicted_on_other_examples_is_named(tmp_path):
    other = stored(seed=6)
    other["test_ids"] = np.array([f"other/{i}" for i in range(len(other["test_ids"]))])
    sweeps = [
        make_run(tmp_path, "t", "a", 1, stored(seed=6)),
        make_run(tmp_path, "t", "b", 1, other),
    ]
    with pytest.raises(DataError, match=r"t/b/seed1/exit_logits.npz: its test examples differ"):
        uncertainty_tables(sweeps, {"t": POLICIES}, Settings(resamples=100), 0.01, INFO)


def test_a_sweep_older_than_its_outputs_is_an_error(tmp_path):
    sweep = make_run(tmp_path, "t", "a", 1, stored(seed=7))
    write_exit_outputs(sweep.parent / "exit_logits.npz", stored(seed=8, skill=(3.0, 3.0, 3.0)))
    with pytest.raises(DataError, match="rerun rule sweep"):
        uncertainty_tables([sweep], {"t": POLICIES}, Settings(resamples=100), 0.01, INFO)


def test_seeds_combined_with_the_examples(tmp_path):
    one = [make_run(tmp_path / "one", "t", "a", 1, stored(seed=9))]
    same = [make_run(tmp_path / "same", "t", "a", s, stored(seed=9)) for s in (1, 2, 3)]
    apart = [  # a good and a poor training run
        make_run(tmp_path / "apart", "t", "a", s, stored(seed=9, skill=k))
        for s, k in ((1, (0.5, 1.5, 3.0)), (2, (0.1, 0.2, 0.4)))
    ]
    settings = Settings(resamples=400)
    summary = {
        name: uncertainty_tables(runs, {"t": POLICIES}, settings, 0.01, {"a": INFO["a"]})["summary"]
        for name, runs in (("one", one), ("same", same), ("apart", apart))
    }
    pick = {k: v[v.policy == "entropy"].iloc[0] for k, v in summary.items()}
    # three copies of one seed: no between-seed variance, the bootstrap interval as is
    assert pick["same"].seeds == 3
    assert pick["same"].test_score_lo == pytest.approx(pick["one"].test_score_lo)
    assert pick["same"].test_score_hi == pytest.approx(pick["one"].test_score_hi)
    # two very different seeds: the interval spans what the seeds disagree on
    width = {k: v.test_score_hi - v.test_score_lo for k, v in pick.items()}
    assert width["apart"] > 2 * width["one"]
    assert "training seeds" in intervals.coverage(3, settings)
    assert "test sampling only" in intervals.coverage(1, settings)


def test_p_value_from_the_bootstrap_standard_error():
    assert bootstrap.p_value(0.0, np.zeros(100)) == 1.0
    d = np.random.default_rng(0).normal(0.02, 0.01, 5000)
    assert bootstrap.p_value(0.02, d) == pytest.approx(0.0455, abs=0.004)  # z = 2


def test_the_guaranteed_knob_adds_columns_and_changes_none(tmp_path):
    from early_exit.analysis.intervals import LTT_COLUMNS
    from early_exit.exits.operating_points import Guarantee

    sweeps = [make_run(tmp_path, "t", "a", 1, stored(seed=1, n=400))]
    kw = dict(policies={"t": POLICIES}, settings=Settings(resamples=100), max_drop=0.01)
    plain = uncertainty_tables(sweeps, info={"a": INFO["a"]}, **kw)["points"]
    loose, strict = (
        uncertainty_tables(sweeps, info={"a": INFO["a"]}, guarantee=Guarantee(d, 0.1), **kw)[
            "points"
        ]
        for d in (0.2, 0.01)
    )
    assert list(loose.columns) == [*plain.columns, *LTT_COLUMNS]  # added after, nothing moved
    pd.testing.assert_frame_equal(loose[plain.columns], plain)
    row = loose.query("policy == 'entropy'").iloc[0]
    assert row.ltt_certified and row.ltt_dev_risk <= 0.2 and row.ltt_test_speedup > 1
    # a risk of 1% on 400 dev examples at epsilon 0.1 is certified with at most one
    # disagreement (P(Bin(400, 0.01) <= 1) = 0.09): the strict guarantee keeps a slower knob
    tight = strict.query("policy == 'entropy'").iloc[0]
    assert tight.ltt_test_speedup <= row.ltt_test_speedup


def test_seed_mean_interval_covers_with_three_seeds_where_the_seed_bootstrap_does_not():
    """Three seeds whose training varies (sd 1) measured on a test set with little noise
    (sd 0.1): over 2000 simulated experiments the t-interval over seed means covers the
    true mean about 95% of the time; resampling the three seeds with replacement (the
    two-level bootstrap it replaced) covers far less."""
    rng = np.random.default_rng(0)
    experiments, seeds, resamples = 2000, 3, 400
    covered, boot_covered = 0, 0
    for _ in range(experiments):
        values = rng.normal(0.0, 1.0, seeds)
        reps = values.mean() + rng.normal(0, 0.1, resamples)  # within-seed replicates
        lo, hi = intervals.combined_interval(values.mean(), reps, intervals.between(values), 0.95)
        covered += lo <= 0 <= hi
        draws = values[rng.integers(0, seeds, (resamples, seeds))].mean(1) + reps - values.mean()
        blo, bhi = bootstrap.interval(draws, 0.95)
        boot_covered += blo <= 0 <= bhi
    assert covered / experiments >= 0.93
    assert boot_covered / experiments < 0.85
    # one seed, or seeds that agree exactly: the bootstrap's percentile interval itself
    reps = rng.normal(0, 1, 500)
    assert intervals.combined_interval(0.0, reps, [], 0.95) == bootstrap.interval(reps, 0.95)
    assert intervals.between([0.5]) == [] and intervals.between([0.5, 0.5]) == [(0.0, 1)]


def test_paired_difference_interval_is_agresti_mins():
    # 10 examples only A gets right, 3 only B, 87 both or neither (n = 100)
    a = np.array([1] * 10 + [0] * 3 + [1] * 80 + [0] * 7, dtype=bool)
    b = np.array([0] * 10 + [1] * 3 + [1] * 80 + [0] * 7, dtype=bool)
    lo, hi = intervals.paired_difference_interval(a, b, 0.95)
    # add 1/2 to each cell: 10.5 and 3.5 of n = 102; d = 7 / 102
    d = 7 / 102
    half = 1.959964 * np.sqrt((14 - 7**2 / 102) / 102**2)
    assert lo == pytest.approx(d - half, abs=1e-6) and hi == pytest.approx(d + half, abs=1e-6)
    lo, hi = intervals.paired_difference_interval(a, a, 0.95)  # identical: around 0
    assert lo < 0 < hi and lo == pytest.approx(-hi)


def test_vs_finetune_at_a_fixed_knob_takes_agresti_min_in_both_tables(tmp_path):
    from early_exit.analysis.intervals import paired_difference_interval

    sweeps = [
        make_run(tmp_path, "t", "a", 1, stored(seed=1)),
        make_run(tmp_path, "t", "f", 1, stored(seed=3, exits=(4,), skill=(3.0,))),
    ]
    info = INFO | {
        "f": INFO["a"] | {"criterion": None, "static": True, "full_model": True},
    }
    tables = uncertainty_tables(sweeps, {"t": POLICIES}, Settings(resamples=300), 0.01, info)
    row = tables["summary"].query("method == 'a' and policy == 'entropy'").iloc[0]
    assert row.finetune == "f"
    runs = {
        m: bootstrap.run_replicates(
            tmp_path / "t" / m / "seed1", ("t", m, 1), POLICIES, Settings(300), 0.01
        )[0]
        for m in ("a", "f")
    }
    early = next(r for r in runs["a"] if r.policy == "entropy")
    tuned = runs["f"][0]
    split = next(iter(early.tests))
    expected = paired_difference_interval(
        early.tests[split].correct[early.chosen], tuned.tests[split].correct[tuned.chosen], 0.95
    )
    assert (row.vs_finetune_lo, row.vs_finetune_hi) == pytest.approx(expected)
    assert row.vs_finetune_lo < row.vs_finetune < row.vs_finetune_hi
    family = tables["significance"].query(
        "method == 'a' and comparison == 'vs fine-tuning' and quantity == 'score'"
    )
    assert (family.value_lo.iloc[0], family.value_hi.iloc[0]) == pytest.approx(expected)
    # fine-tuning against itself: 0, and its interval the bootstrap's [0, 0]
    own = tables["summary"].query("method == 'f'").iloc[0]
    assert [own.vs_finetune, own.vs_finetune_lo, own.vs_finetune_hi] == [0, 0, 0]
