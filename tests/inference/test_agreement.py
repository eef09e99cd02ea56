"""The engine's decisions against the simulation's: near-knob differences are counted and
bounded, any other difference fails with a message naming the run (inference.agreement)."""

import numpy as np
import pytest

from early_exit.exits.policies import Outputs, get_policy
from early_exit.exits.policies.entropy import entropy
from early_exit.inference.agreement import compare, near_knob
from early_exit.support.errors import DataError


def outputs(n=400, exits=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (n, exits, classes)).astype(np.float32)
    return Outputs(logits, rng.integers(0, classes, n))


def engine_like(out, policy, knob, options=None):
    """What an engine that does exactly what the simulation says answers."""
    exits = get_policy(policy).exits(out, np.array([knob]), **(options or {}))[0]
    return exits, out.logits[np.arange(len(exits)), exits]


def test_an_engine_that_agrees_passes():
    out = outputs()
    exits, logits = engine_like(out, "entropy", 0.6)
    assert 0 < (exits < 3).sum() < len(exits)  # the knob splits the examples
    agreement = compare(out, "entropy", 0.6, {}, exits, logits)
    assert (agreement.differ, agreement.tolerated, agreement.examples) == (0, 0, 400)
    np.testing.assert_array_equal(agreement.stored_exits, exits)
    agreement.check("run x")


def test_a_difference_away_from_the_knob_fails_naming_the_run():
    out = outputs()
    exits, logits = engine_like(out, "entropy", 0.6)
    early = int(np.flatnonzero(exits == 3)[0])
    exits = exits.copy()
    exits[early] = 0  # one example leaves at the first exit, nowhere near the knob there
    agreement = compare(out, "entropy", 0.6, {}, exits, logits)
    assert (agreement.differ, agreement.tolerated, agreement.away) == (1, 0, 1)
    with pytest.raises(DataError, match=r"^run x: .* on 1 of 400 test examples \(1 with no"):
        agreement.check("run x")


def test_a_wrong_answer_at_the_right_exit_fails():
    out = outputs()
    exits, logits = engine_like(out, "entropy", 0.6)
    logits = logits.copy()
    row = int(np.flatnonzero(np.ptp(logits, axis=1) > 1)[0])
    logits[row] = np.roll(logits[row], 1)  # the argmax moves, the exit does not
    agreement = compare(out, "entropy", 0.6, {}, exits, logits)
    assert agreement.away == 1
    with pytest.raises(DataError, match="differ from the stored outputs"):
        agreement.check("run y")


def test_near_knob_differences_are_tolerated_up_to_the_bound():
    """Put examples' entropy at an exit within the tolerance of the knob: an engine that
    sends them out there (the float on the other side) is tolerated, up to 1% of them."""
    out = outputs()
    knob = 0.6
    exits, _ = engine_like(out, "entropy", knob)
    late = np.flatnonzero(exits == 3)  # examples that never fired: none exits earlier
    h = entropy(out.logits)

    def nudge(rows):
        logits = out.logits.copy()
        for row in rows:  # sharpen exit 0's logits until its entropy is just above the knob
            lo, hi = 1.0, 1000.0
            z = logits[row, 0].astype(np.float64)
            for _ in range(60):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if entropy(z * mid) > knob + 2e-6 else (lo, mid)
            logits[row, 0] = (z * lo).astype(np.float32)
        return Outputs(logits, out.labels)

    assert (h[late, 0] > knob).all()
    near = nudge(late[:4])
    assert (entropy(near.logits[late[:4], 0]) - knob < 1e-5).all()
    assert near_knob(near, "entropy", knob, {}, np.full(400, 3))[late[:4]].all()
    assert near_knob(near, "entropy", knob, {}, np.full(400, 3)).sum() == 4
    exits_near, logits_near = engine_like(near, "entropy", knob)
    exits_near[late[:4]] = 0  # the engine's float fell on the other side of the knob
    logits_near[late[:4]] = near.logits[late[:4], 0]
    agreement = compare(near, "entropy", knob, {}, exits_near, logits_near)
    assert (agreement.differ, agreement.tolerated) == (4, 4)
    agreement.check("run z")  # 4 <= 1% of 400
    more = nudge(late[:5])
    exits_more, logits_more = engine_like(more, "entropy", knob)
    exits_more[late[:5]] = 0
    logits_more[late[:5]] = more.logits[late[:5], 0]
    agreement = compare(more, "entropy", knob, {}, exits_more, logits_more)
    assert (agreement.differ, agreement.tolerated, agreement.away) == (5, 5, 0)
    with pytest.raises(DataError, match=r"5 near it, at most 4 = 1% allowed"):
        agreement.check("run z")


def test_patience_knobs_do_not_move_and_ties_are_near():
    """Patience's knob is a whole number: nothing is near it; top-two logits within the
    tolerance at an exit the example reached are."""
    out = outputs(n=50)
    logits = out.logits.copy()
    logits[7, 1] = [1.0, 1.0 + 1e-7, -5.0]  # a tie at exit 1
    tied = Outputs(logits, out.labels)
    last = np.full(50, 3)
    near = near_knob(tied, "patience", 2, {"tau": 0.1}, last)
    assert near.tolist() == [i == 7 for i in range(50)]
    assert not near_knob(tied, "patience", 2, {}, np.zeros(50, int)).any()  # left at exit 0


def test_regression_patience_is_near_its_tau():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 1, (60, 4, 1)).astype(np.float32)
    logits[3, 1, 0] = logits[3, 0, 0] + np.float32(0.1)  # |z_1 - z_0| = tau, give or take
    out = Outputs(logits, rng.normal(0, 1, 60), "regression")
    near = near_knob(out, "patience", 1, {"tau": 0.1}, np.full(60, 3))
    assert near[3] and near.sum() <= 2
    exits, answers = engine_like(out, "patience", 1, {"tau": 0.1})
    answers = answers + 1e-7  # within the tolerance: the same answer
    assert compare(out, "patience", 1, {"tau": 0.1}, exits, answers).differ == 0
    wrong = compare(out, "patience", 1, {"tau": 0.1}, exits, answers + 0.01)
    assert wrong.differ == 60 and wrong.away == 60 - near.sum()


def test_the_engine_and_the_stored_outputs_must_hold_the_same_examples():
    out = outputs(n=20)
    exits, logits = engine_like(out, "entropy", 0.6)
    with pytest.raises(DataError, match="answered 19 examples, the stored outputs hold 20"):
        compare(out, "entropy", 0.6, {}, exits[:19], logits[:19])
