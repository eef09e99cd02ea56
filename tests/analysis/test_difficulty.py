import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
from fake_runs import make_run
from scipy.special import softmax

from early_exit.analysis import difficulty

matplotlib.use("Agg")

# exits 1, 2, 3 predict: all agree / the middle one agrees / none agrees with the last
PREDS = [[0, 0, 0], [0, 1, 1], [1, 0, 2]]


def test_difficulty_frame_measures_agreement_length_and_calibrated_confidence():
    run = make_run(PREDS, [0, 1, 2], [1, 2, 3], lengths=[5, 9, 12], temperatures=[2.0, 1, 1])
    frame = difficulty.difficulty_frame([run, make_run([[0]], [0], [3])], "test")
    assert len(frame) == 3  # the single-exit run is skipped
    assert frame.agreement.tolist() == [1.0, 0.5, 0.0]
    assert frame.length.tolist() == [5, 9, 12]
    assert frame.first_correct.tolist() == [True, False, False]
    expected = softmax(np.array([2.0, 0.0, 0.0]) / 2.0).max()  # scale 2, T = 2
    assert frame.confidence.tolist() == pytest.approx([expected] * 3)


def test_spearman_per_run_and_nan_for_a_constant_proxy():
    frame = pd.DataFrame(
        {
            "task": "t",
            "method": "m",
            "seed": [1] * 4 + [2] * 4,
            "length": [1, 2, 3, 4] * 2,
            "agreement": [0.5] * 8,
            "confidence": [0.1, 0.2, 0.3, 0.4, 0.4, 0.3, 0.2, 0.1],
        }
    )
    table = difficulty.spearman_table(frame)
    assert table.rho_length.tolist() == pytest.approx([1.0, -1.0])
    assert math.isnan(table.rho_agreement[0]) and table.examples.tolist() == [4, 4]
    text = difficulty.spearman_markdown(table, "Difficulty", "test")
    assert "| t      | m        | +0.00 ± 1.41    | –" in text


def test_many_lengths_are_binned_for_drawing_only():
    frame = pd.DataFrame({"length": np.arange(100), "confidence": np.linspace(0, 1, 100)})
    binned = difficulty.binned_lengths(frame)
    assert binned.length.nunique() == 8 and binned.length.is_monotonic_increasing
    assert difficulty.binned_lengths(frame.head(5)).length.tolist() == [0, 1, 2, 3, 4]


def test_figure_has_a_row_per_task_and_a_column_per_proxy():
    runs = [make_run(PREDS, [0, 1, 2], [1, 2, 3], task=t, lengths=[5, 9, 12]) for t in "ab"]
    frame = difficulty.difficulty_frame(runs, "test")
    fig = difficulty.difficulty_figure(frame, {"m": "C0"}, "test")
    assert [ax.get_title() for ax in fig.axes] == ["a", "a", "b", "b"]
    assert fig.axes[2].get_xlabel() == "input length (tokens)"


def test_a_task_truncated_to_one_length_says_so_instead_of_an_empty_axis():
    # task "a": every input 48 tokens (as bbc-news at max_length 48); task "b" varies
    runs = [
        make_run(PREDS, [0, 1, 2], [1, 2, 3], task="a", lengths=[48, 48, 48]),
        make_run(PREDS, [0, 1, 2], [1, 2, 3], task="b", lengths=[5, 9, 12]),
    ]
    fig = difficulty.difficulty_figure(difficulty.difficulty_frame(runs, "test"), {"m": "C0"}, "t")
    a_length, a_agreement, b_length = fig.axes[:3]
    assert not a_length.lines and not a_length.collections  # nothing drawn...
    assert "every input is 48 tokens" in a_length.texts[0].get_text()  # ...and it says why
    assert a_agreement.lines and b_length.lines
    assert fig.legends  # the legend comes from the first drawn panel
