import math

import numpy as np
import pytest

from early_exit.errors import ConfigError
from early_exit.policies import entropy, entropy_exits, entropy_grid, get_policy


def brute_entropy_exit(example_logits: np.ndarray, threshold: float) -> int:
    """Per-example loop, written independently of the vectorised code."""
    for i, z in enumerate(example_logits):
        p = np.exp(z - z.max())
        p /= p.sum()
        h = -sum(pi * math.log(pi) for pi in p if pi > 0)
        if h < threshold:
            return i
    return len(example_logits) - 1


def test_entropy_of_uniform_and_one_hot():
    assert entropy(np.zeros((1, 4)))[0] == pytest.approx(math.log(4))
    assert entropy(np.array([[1000.0, -1000.0]]))[0] == pytest.approx(0.0, abs=1e-12)


def test_entropy_exits_agree_with_a_per_example_loop():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(200, 6, 5))
    grid = entropy_grid(5, 30)
    fast = entropy_exits(logits, grid)
    assert fast.shape == (30, 200)
    for k, threshold in enumerate(grid):
        slow = [brute_entropy_exit(logits[n], threshold) for n in range(200)]
        np.testing.assert_array_equal(fast[k], slow)


def test_grid_ends_never_exit_early_and_always_exit_first():
    logits = np.random.default_rng(1).normal(size=(50, 4, 3))
    exits = entropy_exits(logits, entropy_grid(3, 5))
    assert (exits[0] == 3).all()  # S = 0: strict test never fires, the last exit answers
    assert (exits[-1] == 0).all()  # S > ln C: everything leaves at the first exit


def test_unknown_policy_names_the_allowed_ones():
    with pytest.raises(ConfigError, match="allowed: \\['entropy'\\]"):
        get_policy("patienc")
