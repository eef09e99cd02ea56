import numpy as np
import pytest
from scipy.special import softmax

from early_exit.exits.calibration import bin_index, calibrate, ece, fit_temperature, nll


def synthetic(temperature, n=20000, classes=4, seed=0):
    """Labels drawn from softmax(z / T): the true temperature of z is T."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(n, classes))
    probs = softmax(logits / temperature, axis=1)
    labels = (rng.random(n)[:, None] > probs.cumsum(1)).sum(1)
    return logits, labels


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_temperature_fit_recovers_a_known_temperature(true_t):
    logits, labels = synthetic(true_t)
    fitted = fit_temperature(logits, labels)
    assert fitted == pytest.approx(true_t, rel=0.05)
    assert nll(logits, labels, fitted) <= nll(logits, labels, 1.0) + 1e-12


def test_ece_by_hand():
    # two bins hit: confidence 0.9 (both right) and 0.6 (one of two right)
    logits = np.log(np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]]))
    labels = np.array([0, 0, 0, 1])
    assert ece(logits, labels) == pytest.approx(0.5 * 0.1 + 0.5 * 0.1)


def test_ece_bins_are_closed_on_the_right():
    edges = np.linspace(0, 1, 16)
    # a confidence exactly on an edge belongs to the bin below it; 0 to the first bin
    assert bin_index(edges).tolist() == [0, *range(15)]
    assert bin_index(np.array([0.5 + 1e-12, 0.5]), 2).tolist() == [1, 0]
    # [0, 0] -> confidence exactly 0.5, right: with 2 bins it is alone in (0, 0.5];
    # [ln 4, 0] -> 0.8, wrong: alone in (0.5, 1]. Left-closed bins would merge them.
    logits = np.array([[0.0, 0.0], [np.log(4.0), 0.0]])
    labels = np.array([0, 1])
    assert ece(logits, labels, n_bins=2) == pytest.approx(0.5 * 0.5 + 0.5 * 0.8)


def test_calibration_report_fits_on_dev_not_test():
    # dev and test drawn at different temperatures: fitting on test would give 0.5 / 0.25
    dev_z, dev_y = synthetic(2.0, n=4000, seed=1)
    test_z, test_y = synthetic(0.5, n=4000, seed=2)
    stored = {
        "exit_layers": np.array([1, 2]),
        "dev_logits": np.stack([dev_z, dev_z * 0.5], 1),
        "dev_labels": dev_y,
        "test_logits": np.stack([test_z, test_z * 0.5], 1),
        "test_labels": test_y,
    }
    report = calibrate(stored)
    assert report["temperatures"] == pytest.approx([2.0, 1.0], rel=0.1)
    assert report["dev_ece_after"][0] < report["dev_ece_before"][0]
    assert report["dev_nll_after"][0] < report["dev_nll_before"][0]
    # the test numbers use the dev temperature
    t_dev = report["temperatures"][0]
    assert report["test_nll_after"][0] == pytest.approx(nll(test_z, test_y, t_dev))
    assert report["test_ece_after"][0] == pytest.approx(ece(test_z, test_y, t_dev))
