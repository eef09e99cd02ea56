"""Every policy against a per-example loop written independently of the vectorised code."""

import math

import numpy as np
import pytest

from early_exit.exits.policies import Outputs, check_policy, get_policy
from early_exit.exits.policies.confidence import grid as confidence_grid
from early_exit.exits.policies.entropy import entropy
from early_exit.exits.policies.entropy import grid as entropy_grid
from early_exit.exits.policies.patience import grid as patience_grid
from early_exit.support.errors import ConfigError


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def brute_entropy(z_exits, s):
    for i, z in enumerate(z_exits):
        if -sum(p * math.log(p) for p in softmax(z) if p > 0) < s:
            return i
    return len(z_exits) - 1


def brute_patience(z_exits, t, regression=False, tau=0.1):
    counter, previous = 0, None
    for i, z in enumerate(z_exits):
        current = z[0] if regression else int(np.argmax(z))
        if previous is not None and (
            abs(current - previous) < tau if regression else current == previous
        ):
            counter += 1
        else:
            counter = 0
        previous = current
        if counter == t:
            return i
    return len(z_exits) - 1


def brute_confidence(z_exits, c, temps):
    for i, z in enumerate(z_exits):
        if softmax(z / temps[i]).max() >= c:
            return i
    return len(z_exits) - 1


def brute_oracle(z_exits, label):
    for i, z in enumerate(z_exits):
        if np.argmax(z) == label:
            return i
    return len(z_exits) - 1


@pytest.fixture
def outputs():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 300)
    logits = rng.normal(scale=2.0, size=(300, 6, 4))
    logits[np.arange(300), :, labels] += np.linspace(0, 3, 6)
    return Outputs(logits, labels, temperatures=np.array([2.0, 1.5, 1.2, 1.0, 0.8, 0.5]))


@pytest.mark.parametrize(
    ("name", "cfg", "brute"),
    [
        ("entropy", {"num_thresholds": 25}, lambda z, y, k, o: brute_entropy(z, k)),
        ("patience", {"values": "all"}, lambda z, y, k, o: brute_patience(z, k)),
        (
            "confidence",
            {"num_thresholds": 25},
            lambda z, y, k, o: brute_confidence(z, k, o.temperatures),
        ),
        ("oracle", {}, lambda z, y, k, o: brute_oracle(z, y)),
    ],
)
def test_policy_agrees_with_its_per_example_loop(outputs, name, cfg, brute):
    grid, exits = get_policy(name).decide(outputs, cfg)
    assert exits.shape == (len(grid), 300)
    for k, knob in enumerate(grid):
        expected = [brute(outputs.logits[n], outputs.labels[n], knob, outputs) for n in range(300)]
        np.testing.assert_array_equal(exits[k], expected)


def test_regression_patience_agrees_with_its_loop():
    rng = np.random.default_rng(1)
    logits = np.cumsum(rng.normal(scale=0.2, size=(200, 6, 1)), axis=1)
    out = Outputs(logits, rng.normal(size=200), task_type="regression")
    grid, exits = get_policy("patience").decide(out, {"values": [1, 2, 3], "tau": 0.15})
    for k, t in enumerate(grid):
        expected = [brute_patience(logits[n], t, regression=True, tau=0.15) for n in range(200)]
        np.testing.assert_array_equal(exits[k], expected)


def test_entropy_of_uniform_and_one_hot():
    assert entropy(np.zeros((1, 4)))[0] == pytest.approx(math.log(4))
    assert entropy(np.array([[1000.0, -1000.0]]))[0] == pytest.approx(0.0, abs=1e-12)


def test_grid_ends_mean_full_model_and_first_exit(outputs):
    ent = get_policy("entropy").exits(outputs, entropy_grid(outputs, {"num_thresholds": 5}))
    assert (ent[0] == 5).all() and (ent[-1] == 0).all()
    conf_grid = confidence_grid(outputs, {"num_thresholds": 5})
    conf = get_policy("confidence").exits(outputs, conf_grid)
    assert (conf[0] == 0).all() and (conf[-1] == 5).all()  # c = 1/C fires at once; c > 1 never
    assert patience_grid(outputs, {"values": "all"}).tolist() == [1, 2, 3, 4, 5]
    full = get_policy("patience").exits(outputs, np.array([5]))
    assert (full == 5).all()  # t = E-1: only the last exit can reach it


def test_bad_policy_settings_say_what_is_allowed():
    with pytest.raises(ConfigError, match="unknown policy 'patienc'; allowed: confidence, "):
        get_policy("patienc")
    with pytest.raises(ConfigError, match=r"patience \[6, 9\] impossible with 6 exits.*1..5"):
        check_policy("patience", "classification", 6, {"values": [2, 6, 9]})
    with pytest.raises(ConfigError, match="'entropy' does not apply to regression.*allowed: pat"):
        check_policy("entropy", "regression")
    check_policy("patience", "regression", 6, {"values": [1, 5]})


def brute_learned(u_exits, tau):
    for i, u in enumerate(u_exits):
        if u < tau:
            return i
    return len(u_exits) - 1


@pytest.mark.parametrize("task_type", ["classification", "regression"])
def test_learned_policy_agrees_with_its_per_example_loop(outputs, task_type):
    rng = np.random.default_rng(2)
    scores = rng.uniform(size=(300, 6)).astype(np.float32)
    logits = outputs.logits[..., :1] if task_type == "regression" else outputs.logits
    out = Outputs(logits, outputs.labels, task_type=task_type, scores=scores)
    grid, exits = get_policy("learned").decide(out, {"num_thresholds": 25})
    assert grid[0] == 0.0 and grid[-1] > 1.0
    assert (exits[0] == 5).all() and (exits[-1] == 0).all()  # tau = 0 never fires, > 1 always
    for k, tau in enumerate(grid):
        np.testing.assert_array_equal(exits[k], [brute_learned(scores[n], tau) for n in range(300)])


def test_learned_policy_is_not_applicable_without_gate_scores(outputs):
    policy = get_policy("learned")
    assert not policy.applies(outputs)
    assert get_policy("entropy").applies(outputs)
    with pytest.raises(ConfigError, match="stores no gate outputs"):
        policy.decide(outputs, {"num_thresholds": 5})


def test_log_softmax_is_scipys_bit_for_bit():
    """The policies' own log-softmax (without scipy's array-API dispatch) gives the very
    bits scipy's does, so sweeps and the engine decide as before."""
    from scipy.special import log_softmax as scipy_log_softmax

    from early_exit.exits.policies.base import log_softmax

    rng = np.random.default_rng(0)
    for shape in ((5,), (3, 4), (50, 6, 5), (7, 1)):
        x = rng.normal(size=shape) * 30
        np.testing.assert_array_equal(log_softmax(x), scipy_log_softmax(x, axis=-1))
        np.testing.assert_array_equal(log_softmax(x, axis=0), scipy_log_softmax(x, axis=0))
    x = np.array([[np.inf, 1.0], [-np.inf, -np.inf], [1e308, 1.0]])
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(log_softmax(x), scipy_log_softmax(x, axis=-1))
