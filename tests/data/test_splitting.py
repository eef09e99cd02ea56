from collections import Counter

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from early_exit.data.splitting import (
    carve_splits,
    deduplicate,
    normalise_whitespace,
    quantile_strata,
    stratified_subsample,
)
from early_exit.support.errors import DataError

LABELS = [i % 4 for i in range(200)]  # 4 balanced labels


def test_normalise_whitespace_collapses_newlines_and_tabs():
    assert normalise_whitespace("  a\n\n b\t c \r\n") == "a b c"


def test_deduplicate_keeps_first_occurrence_in_order():
    result = deduplicate(["a", "b", "a", "c", "b", "a"], [0, 1, 0, 2, 1, 0])
    assert result.keep == [0, 1, 3]
    assert result.dropped == 3
    assert result.conflicting == 0


def test_deduplicate_drops_every_copy_of_a_conflicting_text():
    result = deduplicate(["x", "y", "x", "z", "x"], [0, 1, 1, 0, 0])
    assert result.keep == [1, 3]
    assert result.dropped == 3  # all three copies of "x"
    assert result.conflicting == 3


def test_carve_splits_sizes_disjoint_and_complete():
    parts = carve_splits(LABELS, {"dev": 0.1, "test": 0.2}, seed=13)
    assert {k: len(v) for k, v in parts.items()} == {"train": 140, "dev": 20, "test": 40}
    ids = [set(v) for v in parts.values()]
    assert set.union(*ids) == set(range(200))
    assert sum(len(s) for s in ids) == 200
    for v in parts.values():
        assert v == sorted(v)  # pool order, independent of sklearn's shuffling


def test_carve_splits_is_stratified():
    parts = carve_splits(LABELS, {"dev": 0.1, "test": 0.2}, seed=13)
    assert Counter(LABELS[i] for i in parts["test"]) == {0: 10, 1: 10, 2: 10, 3: 10}
    assert Counter(LABELS[i] for i in parts["dev"]) == {0: 5, 1: 5, 2: 5, 3: 5}


def test_carve_splits_seeded():
    a = carve_splits(LABELS, {"dev": 0.1, "test": 0.2}, seed=1)
    assert a == carve_splits(LABELS, {"dev": 0.1, "test": 0.2}, seed=1)
    assert a["test"] != carve_splits(LABELS, {"dev": 0.1, "test": 0.2}, seed=2)["test"]


def test_test_split_does_not_depend_on_carving_dev():
    both = carve_splits(LABELS, {"dev": 0.1, "test": 0.2}, seed=5)
    test_only = carve_splits(LABELS, {"test": 0.2}, seed=5)
    assert both["test"] == test_only["test"]
    assert "dev" not in test_only and len(test_only["train"]) == 160


def test_carve_splits_too_small_for_stratification_raises_data_error():
    with pytest.raises(DataError, match="stratified"):
        carve_splits([0, 0, 0, 1, 1, 1, 2, 2, 2, 3], {"test": 0.2}, seed=0)


def test_stratified_subsample_keeps_every_label_and_is_sorted():
    picked = stratified_subsample(LABELS, 20, seed=3)
    assert len(picked) == 20 and picked == sorted(picked)
    assert Counter(LABELS[i] for i in picked) == {0: 5, 1: 5, 2: 5, 3: 5}
    assert picked == stratified_subsample(LABELS, 20, seed=3)


def test_stratified_subsample_larger_than_pool_returns_all():
    assert stratified_subsample([0, 1, 1], 10, seed=0) == [0, 1, 2]


# --- continuous (regression) labels ---------------------------------------------------


def skewed_scores(n=1000, seed=0):
    """Right-skewed scores in [0, 5] with ties at 0, like similarity ratings."""
    rng = np.random.default_rng(seed)
    scores = np.minimum(rng.exponential(1.2, size=n), 5.0)
    scores[rng.random(n) < 0.1] = 0.0
    return [round(float(s), 2) for s in scores]


def test_quantile_strata_equal_bins_and_fallback():
    strata = quantile_strata([float(i) for i in range(100)], count=20)
    assert Counter(strata) == {b: 20 for b in range(5)}
    assert strata == sorted(strata)  # bins follow the label order
    # 6 values cannot hold 5 bins of >= 2, nor 3 bins when only 2 are drawn: 2 bins
    assert len(set(quantile_strata([0.1, 0.5, 0.9, 1.3, 2.0, 4.0], count=2))) == 2
    assert quantile_strata([2.5] * 10, count=3) is None  # all tied
    assert quantile_strata([1.0, 2.0, 3.0], count=1) is None  # 1 example per bin at most


def test_carve_continuous_keeps_label_distribution_similar():
    scores = skewed_scores()
    parts = carve_splits(scores, {"dev": 0.1, "test": 0.2}, seed=13, continuous=True)
    assert {k: len(v) for k, v in parts.items()} == {"train": 700, "dev": 100, "test": 200}
    assert sorted(i for v in parts.values() for i in v) == list(range(1000))
    pool = np.array(scores)
    quintiles = np.quantile(pool, [0.2, 0.4, 0.6, 0.8])
    for role, idx in parts.items():
        split = pool[idx]
        assert abs(split.mean() - pool.mean()) < 0.1 * pool.std(), role
        assert abs(split.std() - pool.std()) < 0.1 * pool.std(), role
        shares = np.bincount(np.searchsorted(quintiles, split, side="right"), minlength=5)
        assert np.all(np.abs(shares / len(split) - 0.2) <= 0.03), (role, shares)


def test_carve_continuous_beats_a_random_split():
    """Over many seeds, split means stray from the pool's far less than unstratified ones."""
    scores = skewed_scores()
    pool = np.array(scores)

    def worst_mean_gap(parts):
        return max(abs(pool[idx].mean() - pool.mean()) for idx in parts.values()) / pool.std()

    binned, plain = [], []
    for seed in range(20):
        parts = carve_splits(scores, {"dev": 0.1, "test": 0.2}, seed=seed, continuous=True)
        binned.append(worst_mean_gap(parts))
        rest, test = train_test_split(list(range(len(scores))), test_size=200, random_state=seed)
        train, dev = train_test_split(rest, test_size=100, random_state=seed)
        plain.append(worst_mean_gap({"train": train, "dev": dev, "test": test}))
    assert np.mean(binned) < 0.6 * np.mean(plain)


def test_carve_continuous_is_seeded_and_test_independent_of_dev():
    scores = skewed_scores(300)
    a = carve_splits(scores, {"dev": 0.1, "test": 0.2}, seed=1, continuous=True)
    assert a == carve_splits(scores, {"dev": 0.1, "test": 0.2}, seed=1, continuous=True)
    assert (
        a["test"]
        != carve_splits(scores, {"dev": 0.1, "test": 0.2}, seed=2, continuous=True)["test"]
    )
    test_only = carve_splits(scores, {"test": 0.2}, seed=1, continuous=True)
    assert test_only["test"] == a["test"]


def test_carve_continuous_tiny_pool_falls_back_instead_of_failing():
    # the classification equivalent raises (see above); a regression split just gets coarser
    parts = carve_splits(
        [0.0, 1.0, 2.0, 3.0, 4.0], {"dev": 0.2, "test": 0.2}, seed=0, continuous=True
    )
    assert {k: len(v) for k, v in parts.items()} == {"train": 3, "dev": 1, "test": 1}
    tied = carve_splits([1.5] * 10, {"test": 0.2}, seed=0, continuous=True)
    assert len(tied["test"]) == 2


def test_stratified_subsample_continuous_spans_the_range():
    scores = [float(i) for i in range(100)]
    picked = stratified_subsample(scores, 10, seed=4, continuous=True)
    assert len(picked) == 10 and picked == sorted(picked)
    assert Counter(int(scores[i]) // 20 for i in picked) == {b: 2 for b in range(5)}
    assert picked == stratified_subsample(scores, 10, seed=4, continuous=True)


def test_deduplicate_float_labels_conflict_when_different():
    result = deduplicate(["a", "a", "b", "b", "c"], [3.8, 3.8, 1.0, 1.2, 0.0])
    assert result.keep == [0, 4]
    assert result.conflicting == 2 and result.dropped == 3
