"""The coverage simulation: counting by hand, and the fixed-knob intervals covering about
95% on a small synthetic pool (scripts/coverage_sim.py runs it on stored outputs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from early_exit.analysis.coverage import STATS, Pool, coverage, simulate


def synthetic_pool(n=600, knobs=8, layers=6, seed=0) -> Pool:
    """Knob 0 is the full model; later knobs exit earlier on easy examples and lose some
    of the hard ones."""
    rng = np.random.default_rng(seed)
    full = rng.random(n) < 0.85
    ease = rng.random(n)
    s = np.linspace(0, 1, knobs)[:, None]
    layer = np.maximum(1, np.round(layers * (1 - s * ease[None, :]))).astype(int)
    hurt = rng.random((knobs, n)) < 0.3 * s * (1 - ease[None, :])
    return Pool(full[None, :] & ~hurt, layer, full, layers)


def test_coverage_counts_the_truth_inside_below_and_above():
    draws = pd.DataFrame({"draw": range(4)})
    for stat in STATS:
        draws[f"{stat}_truth"] = [0.5, 0.5, 0.5, 0.5]
        draws[f"{stat}_fixed_lo"] = [0.4, 0.6, 0.1, 0.45]
        draws[f"{stat}_fixed_hi"] = [0.6, 0.7, 0.2, 0.5]
        draws[f"{stat}_reselected_lo"] = 0.0
        draws[f"{stat}_reselected_hi"] = 1.0
    draws["score_truth"] = [0.5, 0.5, 0.5, 0.9]
    table = coverage(draws).set_index(["statistic", "interval", "truth"])
    fixed = table.loc[("drop", "fixed", "at knob")]
    assert fixed.coverage == 0.5 and fixed.truth_below == 0.25 and fixed.truth_above == 0.25
    assert fixed.width == pytest.approx(0.1125)
    assert table.loc[("score", "fixed", "at knob")].coverage == 0.25
    # the protocol's truth is the mean over splits, 0.6: inside the first two intervals
    assert table.loc[("score", "fixed", "protocol")].coverage == 0.5
    assert table.loc[("score", "fixed", "protocol")].truth_above == 0.5
    assert table.loc[("drop", "reselected", "protocol")].coverage == 1.0


def test_simulated_truth_is_the_pool_at_the_chosen_knob_and_fixed_intervals_cover():
    pool = synthetic_pool()
    draws = simulate(pool, 150, 300, 0.01, draws=120, resamples=200, seed=1)
    everything = pool.values(np.arange(600))
    for row in draws.itertuples():
        assert row.score_truth == pytest.approx(everything["score"][row.knob])
        assert row.speedup_truth == pytest.approx(everything["speedup"][row.knob])
    assert draws.knob.nunique() > 1  # the dev choice varies between splits
    table = coverage(draws).set_index(["statistic", "interval", "truth"])
    # 120 splits: a 95% interval covers 114 on average, sd 2.4; 0.88 is 3 sd below
    assert table.loc[("score", "fixed", "at knob")].coverage >= 0.88
    assert table.loc[("speedup", "fixed", "at knob")].coverage >= 0.88
    assert draws.equals(simulate(pool, 150, 300, 0.01, draws=120, resamples=200, seed=1))


def test_guaranteed_knob_on_simulated_splits_keeps_its_risk():
    from early_exit.exits.operating_points import Guarantee

    pool = synthetic_pool()
    full_pred = pool.full_correct[None, :]
    differ = pool.correct != full_pred  # disagreement with the full model
    pool = Pool(pool.correct, pool.layer, pool.full_correct, pool.num_layers, differ)
    draws = simulate(pool, 150, 300, 0.01, draws=100, resamples=50, guarantee=Guarantee())
    assert (draws.ltt_risk_truth > 0.05).mean() <= 0.1 + 2 * np.sqrt(0.09 / 100)
    certified = draws[draws.ltt_knob >= 0]
    assert len(certified) > 50 and certified.ltt_speedup_truth.mean() > 1.05  # it exits early


def test_vs_finetune_is_simulated_where_the_pool_holds_fine_tuning():
    pool = synthetic_pool()
    rng = np.random.default_rng(5)
    # fine-tuning: right where the full model is, except 10% of examples flipped
    tuned = pool.full_correct ^ (rng.random(pool.full_correct.size) < 0.1)
    with_ft = Pool(pool.correct, pool.layer, pool.full_correct, pool.num_layers, None, tuned)
    assert "vs_finetune" not in pool.stats and "vs_finetune" in with_ft.stats
    draws = simulate(with_ft, 150, 300, 0.01, draws=120, resamples=200, seed=2)
    everything = with_ft.values(np.arange(600))
    for row in draws.itertuples():
        assert row.vs_finetune_truth == pytest.approx(everything["vs_finetune"][row.knob])
        assert row.vs_finetune_truth == pytest.approx(everything["score"][row.knob] - tuned.mean())
    table = coverage(draws).set_index(["statistic", "interval", "truth"])
    for kind in ("fixed", "agresti-min"):
        assert table.loc[("vs_finetune", kind, "at knob")].coverage >= 0.88
    # without fine-tuning in the pool, neither the statistic nor its alternative appears
    plain = coverage(simulate(pool, 150, 300, 0.01, draws=5, resamples=20, seed=2))
    assert "vs_finetune" not in set(plain.statistic)
    assert "agresti-min" not in set(plain.interval)


def test_a_wrong_paired_interval_shows_in_the_coverage():
    """The check can fail: an interval of fine-tuning's score alone, not the difference,
    misses the truth of vs fine-tuning every time."""
    pool = synthetic_pool()
    tuned = pool.full_correct.copy()
    with_ft = Pool(pool.correct, pool.layer, pool.full_correct, pool.num_layers, None, tuned)
    draws = simulate(with_ft, 150, 300, 0.01, draws=20, resamples=50, seed=3)
    draws["vs_finetune_fixed_lo"] = draws["score_fixed_lo"]
    draws["vs_finetune_fixed_hi"] = draws["score_fixed_hi"]
    table = coverage(draws).set_index(["statistic", "interval", "truth"])
    assert table.loc[("vs_finetune", "fixed", "at knob")].coverage == 0.0
