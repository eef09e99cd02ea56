"""Tests between methods: known answers for McNemar and Holm, and the matrix figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from early_exit.analysis import comparisons
from early_exit.analysis.significance import holm, mcnemar


def test_exact_mcnemar_on_a_hand_made_table():
    # 10 examples only A gets right, 3 only B, 50 both, 7 neither
    a = np.array([1] * 10 + [0] * 3 + [1] * 50 + [0] * 7, dtype=bool)
    b = np.array([0] * 10 + [1] * 3 + [1] * 50 + [0] * 7, dtype=bool)
    # two-sided exact binomial on 13 discordant pairs: 2 * P(X <= 3), X ~ Bin(13, 1/2)
    assert mcnemar(a, b) == pytest.approx(2 * (1 + 13 + 78 + 286) / 2**13)
    assert mcnemar(a, b) == mcnemar(b, a)
    assert mcnemar(a, a) == 1.0


def test_holm_step_down_by_hand():
    adjusted = holm([0.01, 0.04, 0.03, 0.005, np.nan])
    # sorted 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> kept monotone: 0.06
    np.testing.assert_allclose(adjusted[:4], [0.03, 0.06, 0.06, 0.02])
    assert np.isnan(adjusted[4])
    assert holm([0.6, 0.9]).tolist() == [1.0, 1.0]  # capped at 1


def test_difference_matrix_is_antisymmetric_and_marks_both_cells(tmp_path):
    pairs = pd.DataFrame(
        {
            "task": "t",
            "test_split": "test",
            "method_a": ["a", "a", "b"],
            "method_b": ["b", "c", "c"],
            "difference": [0.02, 0.05, 0.03],
            "significant": [False, True, False],
        }
    )
    diff, marked = comparisons.difference_matrix(pairs, "t", "test")
    assert diff.loc["a", "c"] == pytest.approx(5.0) and diff.loc["c", "a"] == pytest.approx(-5.0)
    assert marked.loc["a", "c"] and marked.loc["c", "a"] and not marked.loc["a", "b"]
    fig = comparisons.significance_figure(pairs, 0.05)
    stars = [t.get_text() for t in fig.axes[0].texts if t.get_text().endswith("*")]
    assert sorted(stars) == ["-5.0*", "5.0*"]
