"""SplitEE: the paper's reward and cost on hand-computed cases, UCB finding a known best
arm, and the baselines on tiny hand-made streams."""

import numpy as np
import pytest

from early_exit.exits.splitee import (
    CostModel,
    arm_table,
    cumulative_regret,
    early_exit_choice,
    simulate,
    ucb_arms,
)

CM = CostModel(lam=0.1, offload=0.3, alpha=0.8)


def test_reward_and_cost_reproduce_the_papers_formula_by_hand():
    conf = np.array([[0.9, 0.6, 0.95], [0.5, 0.85, 0.7]])
    correct = np.array([[True, False, False], [False, True, True]])
    t = arm_table(conf, correct, np.array([1, 2, 3]), CM)
    # sample 0: arm 0 exits (0.9 >= 0.8): 0.9 - 0.1; arm 1 offloads: 0.95 - 0.3 - 0.2;
    # the last arm never offloads: 0.95 - 0.3
    np.testing.assert_allclose(t.reward[0], [0.8, 0.45, 0.65])
    np.testing.assert_allclose(t.cost[0], [0.1, 0.2 + 0.3, 0.3])
    assert t.offloaded[0].tolist() == [False, True, False]
    assert t.correct[0].tolist() == [True, False, False]  # offloaded: the final layer answers
    # sample 1: arm 0 offloads: 0.7 - 0.3 - 0.1; arm 1 exits: 0.85 - 0.2; last: 0.7 - 0.3
    np.testing.assert_allclose(t.reward[1], [0.3, 0.65, 0.4])
    np.testing.assert_allclose(t.cost[1], [0.4, 0.2, 0.3])
    assert t.correct[1].tolist() == [True, True, True]


def test_exit_layers_not_at_every_layer_cost_their_layer_number():
    t = arm_table(np.array([[0.9, 0.9]]), np.ones((1, 2), bool), np.array([2, 6]), CM)
    np.testing.assert_allclose(t.cost[0], [0.2, 0.6])


@pytest.mark.parametrize("side_info", [False, True])
def test_ucb_converges_to_the_best_arm_of_a_synthetic_stream(side_info):
    rng = np.random.default_rng(0)
    means = np.array([0.2, 0.45, 0.7, 0.5, 0.3])
    reward = means + rng.normal(scale=0.2, size=(6000, 5))
    arms = ucb_arms(reward, c=1.0, side_info=side_info)
    assert arms[:5].tolist() == [0, 1, 2, 3, 4]  # each arm once first
    assert (arms[-2000:] == 2).mean() > 0.9
    regret = cumulative_regret(reward, arms)
    assert regret[-1] / len(arms) < 0.05  # sublinear: the average regret vanishes
    assert regret[-1] - regret[-2000] < regret[2000]  # slower growth late in the stream


def test_side_information_updates_the_shallower_arms():
    reward = np.array([[0.0, 0.0, 0.0]] * 3 + [[5.0, 0.0, 0.0]] * 10 + [[0.0, 0.0, 1.0]] * 20)
    plain = ucb_arms(reward)
    side = ucb_arms(reward, side_info=True)
    # with side information, playing arm 2 also shows arm 0's reward of 5 and pulls to arm 0
    assert (side[3:13] == 0).sum() >= (plain[3:13] == 0).sum()


def test_baselines_on_a_tiny_stream():
    # 3 exits at layers 1..3; logits make exit confidences and correctness known
    logits = np.log(
        np.array(
            [
                [[0.9, 0.1], [0.9, 0.1], [0.95, 0.05]],  # confident at once, right (label 0)
                [[0.6, 0.4], [0.3, 0.7], [0.1, 0.9]],  # confident at exit 2 (conf 0.9)
            ]
        )
    )
    labels = np.array([0, 1])
    assert early_exit_choice(np.array([[0.9, 0.9, 0.95], [0.6, 0.7, 0.9]]), 0.8).tolist() == [0, 2]
    rows, curves = simulate(logits, labels, np.array([1, 2, 3]), CM, orders=2)
    by = {(r["order"], r["policy"]): r for r in rows}
    final = by[(0, "final-layer")]
    assert final["accuracy"] == 1.0 and final["avg_cost"] == pytest.approx(0.3)
    assert final["cost_reduction"] == pytest.approx(0.0) and final["offload_rate"] == 0.0
    ee = by[(0, "early-exit")]  # exits at layer 1 and layer 3
    assert ee["avg_cost"] == pytest.approx((0.1 + 0.3) / 2) and ee["accuracy"] == 1.0
    fixed1 = by[(0, "fixed-1")]  # sample 0 on the device (0.1), sample 1 offloaded (0.1 + 0.3)
    assert fixed1["avg_cost"] == pytest.approx(0.25) and fixed1["offload_rate"] == 0.5
    # rewards: arm 0 = [0.8, 0.9-0.3-0.1], arm 1 = [0.7, 0.9-0.3-0.2], arm 2 = [0.65, 0.6]
    assert by[(0, "best-fixed")]["avg_split_layer"] == 1.0
    assert by[(0, "best-fixed")]["regret"] == 0.0
    assert {c["policy"] for c in curves} == {"splitee", "splitee-s"}
    assert {r["order"] for r in rows} == {0, 1}


def test_lambda_is_scaled_to_the_backbones_depth():
    from early_exit.exits.splitee import SplitEESettings, layer_cost

    # the paper's 0.1 a layer is for 12 layers: a 6-layer model pays 0.2 a layer, so a
    # full pass costs 1.2 against the offloading cost either way
    assert layer_cost(SplitEESettings(lambda_=0.1, lambda_depth=12), 6) == pytest.approx(0.2)
    assert layer_cost(SplitEESettings(lambda_=0.1, lambda_depth=12), 12) == pytest.approx(0.1)
    assert layer_cost(SplitEESettings(lambda_=0.1, lambda_depth=6), 6) == pytest.approx(0.1)
