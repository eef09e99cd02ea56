from collections import Counter

import pytest

from early_exit.data.splitting import (
    carve_splits,
    deduplicate,
    normalise_whitespace,
    stratified_subsample,
)
from early_exit.errors import DataError

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
