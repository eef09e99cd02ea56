"""The knob chosen with a guarantee (Learn-then-Test): the binomial p-value, the fixed
sequence, and a simulation showing the realised violation rate is at most epsilon."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from early_exit.exits.operating_points import (
    Guarantee,
    conservative_order,
    guaranteed,
    ltt_p_values,
)
from early_exit.support.errors import ConfigError


def test_p_value_is_the_binomial_tail():
    assert ltt_p_values(0, 100, 0.05) == pytest.approx(0.95**100)
    assert ltt_p_values(3, 100, 0.05) == pytest.approx(binom.cdf(3, 100, 0.05))


def test_fixed_sequence_stops_at_the_first_knob_it_cannot_certify():
    n, order = 200, np.array([0, 1, 2, 3])
    # knob 2's count fails; knob 3 would pass alone but comes after it in the sequence
    counts = np.array([[0, 2, 30, 0], [30, 0, 0, 0], [0, 0, 0, 0]])
    assert guaranteed(counts, n, order, 0.05, 0.1).tolist() == [1, -1, 3]
    # the order is the conservative one, whatever the grid's order
    assert conservative_order(np.array([2.0, 6.0, 4.0, 4.0])).tolist() == [1, 2, 3, 0]


def test_losses_of_either_risk():
    preds = np.array([[0, 1, 2, 2]])
    full, labels = np.array([0, 1, 1, 2]), np.array([0, 0, 1, 2])
    assert Guarantee().losses(preds, full, labels).tolist() == [[False, False, True, False]]
    # drop: the full model right and the early exit wrong (example 1: both wrong, no loss)
    assert Guarantee(risk="drop").losses(preds, full, labels).tolist() == [
        [False, False, True, False]
    ]
    with pytest.raises(ConfigError, match="analysis.guarantee.risk"):
        Guarantee.from_config({"risk": "accuracy"})


def test_realised_violation_rate_is_at_most_epsilon():
    """Knobs from conservative to aggressive with true risks rising through delta; losses
    nested (an example lost at a knob is lost at every more aggressive one), as exit
    policies make them. Over 4000 calibration splits the chosen knob's true risk exceeds
    delta in at most epsilon of them, while the point rule (the fastest knob whose
    observed risk is at most delta) exceeds it far more often."""
    rng = np.random.default_rng(0)
    risks = np.linspace(0, 0.12, 13)
    delta, epsilon, n, draws = 0.05, 0.1, 212, 4000
    u = rng.random((draws, n))
    counts = (u[:, None, :] < risks[None, :, None]).sum(2)  # [draws, K]
    chosen = guaranteed(counts, n, np.arange(len(risks)), delta, epsilon)
    true_risk = np.where(chosen >= 0, risks[np.maximum(chosen, 0)], 0.0)
    violation = (true_risk > delta).mean()
    assert violation <= epsilon + 2 * np.sqrt(epsilon * (1 - epsilon) / draws)
    assert (chosen >= 0).mean() > 0.9 and true_risk.mean() > 0.02  # it does choose knobs
    ok = counts / n <= delta
    point = np.where(ok.any(1), len(risks) - 1 - np.argmax(ok[:, ::-1], axis=1), -1)
    assert (risks[point] > delta).mean() > 2 * epsilon
