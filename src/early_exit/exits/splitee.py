"""SplitEE (Bajpai et al., AIMLSystems 2023): early exit inside split computing, online.

A device runs the first layers of a multi-exit model up to a *split layer* and either
answers there, when the exit is confident, or offloads the rest to a server, which
answers with the final layer. The split layer is learned on an unlabelled stream by a
multi-armed bandit (UCB, c = 1), one arm per exit. The simulation works from stored
per-exit logits (Div290/SplitEE does the same from a precomputed confidence matrix).

Cost model (the paper's): lambda per layer run on the device, o for offloading.
The paper's lambda = 0.1 is per layer of a 12-layer backbone (a full pass costs 1.2).
`splitee.lambda` keeps that meaning, stated for `splitee.lambda_depth` layers (12 by
default), and the simulation charges lambda x lambda_depth / L per layer of an L-layer
backbone (`layer_cost`), so a full pass costs the same against the offloading cost o on
a 6-layer model as on a 12-layer one (charging 0.1 a layer on 6 layers would halve the
device's cost relative to offloading). Set lambda_depth to L to charge lambda as given.
At arm a (exit at layer l_a), with confidence conf_a = max softmax of exit a and the
threshold alpha:
  conf_a >= alpha:  exit on the device,  reward conf_a - lambda l_a,      cost lambda l_a
  otherwise:        offload,             reward conf_L - o - lambda l_a,  cost lambda l_a + o
The last arm never offloads (reward conf_L - lambda L). With exits at every layer,
l_a = a + 1 as in the released code. Labels only score accuracy; the bandit never sees them.

Decisions where the issue or the released code were silent or disagreed:
- Cost: `splitee.py` reports 0.8 lambda a + lambda (+ o) while `splitee_s.py` reports
  lambda (a + 1) (+ o); the paper's text defines the cost as lambda per layer plus o,
  which is also the reward's cost term, so that is used.
- Initialisation: each arm is played once on the first E samples of the stream, and
  those plays count as decisions (cost, accuracy). The released code plays the arms on
  samples 0..E-1 and then replays the stream from sample 0, seeing those samples twice,
  which an online stream does not allow.
- SplitEE-S updates every shallower arm with that sample's reward at that arm, as the
  released code does; where such an arm would have offloaded, its reward uses conf_L even
  when the chosen arm answered on the device (the simulation's side information, as in
  the released code).
- Final-layer inference (the reference of "cost reduction") runs every layer and
  answers with the last exit: cost lambda L, the last arm's cost.
- Regret is against the best fixed split in hindsight: the arm with the largest total
  reward over the stream (realised rewards, not expectations).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import softmax

from early_exit.exits.stored import load_exit_logits
from early_exit.support.errors import DataError
from early_exit.support.tables import write_table


@dataclass(frozen=True)
class CostModel:
    """lambda: on-device cost per layer; offload: o; alpha: confidence threshold."""

    lam: float
    offload: float
    alpha: float


@dataclass(frozen=True)
class ArmTable:
    """Every sample's outcome at every arm, [N, E] each (what a policy picks from)."""

    reward: np.ndarray
    cost: np.ndarray
    offloaded: np.ndarray  # bool
    correct: np.ndarray  # bool: the answer given at that arm is right


@dataclass(frozen=True)
class SplitEESettings:
    """The simulation's settings of the config's `splitee:` section, typed (the section's
    `pairs` and `methods` are the workflow's planning: `early_exit.config.splitee_settings`).
    Their defaults are written only here: tests/architecture/test_one_place.py checks the
    schema's against them."""

    alpha: float | tuple[float, ...] = 0.75
    """Confidence threshold for exiting on the device, or several (each one simulated)."""
    lambda_: float = 0.1
    """`lambda`: on-device cost per layer of a `lambda_depth`-layer backbone."""
    lambda_depth: int = 12
    """The depth lambda is stated for (the paper's 0.1 is for BERT-base's 12 layers)."""
    offload_costs: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
    """The offloading costs o simulated."""
    orders: int = 5
    """Shuffled orders of the stream."""
    ucb_c: float = 1.0
    """UCB exploration constant."""

    @classmethod
    def from_config(cls, section: dict) -> SplitEESettings:
        """The simulation's settings of a (validated) `splitee:` section (the config spells
        `lambda_` as `lambda`; `pairs` and `methods` are not the simulation's)."""
        fields = {f.name: f.name.removesuffix("_") for f in dataclasses.fields(cls)}
        given = {name: section[key] for name, key in fields.items() if key in section}
        for name in ("alpha", "offload_costs"):
            if isinstance(given.get(name), list):
                given[name] = tuple(given[name])
        return cls(**given)

    @classmethod
    def config_defaults(cls) -> dict:
        """The defaults as the config spells them (what `splitee:` gets when not given)."""
        out = {}
        for f in dataclasses.fields(cls):
            value = f.default
            out[f.name.removesuffix("_")] = list(value) if isinstance(value, tuple) else value
        return out


def layer_cost(settings: SplitEESettings, num_layers: int) -> float:
    """The per-layer device cost on an L-layer backbone: lambda x lambda_depth / L."""
    return float(settings.lambda_) * float(settings.lambda_depth) / num_layers


def confidences(logits: np.ndarray) -> np.ndarray:
    """Max softmax probability of every exit, [N, E] (uncalibrated, as in the paper)."""
    return softmax(logits.astype(np.float64), axis=-1).max(-1)


def arm_table(
    conf: np.ndarray, correct_exit: np.ndarray, layers: np.ndarray, cm: CostModel
) -> ArmTable:
    """Rewards, costs and outcomes of every (sample, arm) under the paper's cost model.

    conf [N, E]: per-exit confidences; correct_exit [N, E]: whether each exit is right.
    """
    layers = np.asarray(layers, dtype=np.float64)[None, :]
    device = conf >= cm.alpha
    device[:, -1] = True  # the last arm never offloads
    final_conf = conf[:, -1:]
    reward = np.where(device, conf, final_conf - cm.offload) - cm.lam * layers
    cost = cm.lam * layers + np.where(device, 0.0, cm.offload)
    correct = np.where(device, correct_exit, correct_exit[:, -1:])
    return ArmTable(reward, cost, ~device, correct)


def ucb_arms(reward: np.ndarray, c: float = 1.0, side_info: bool = False) -> np.ndarray:
    """The arm UCB plays on each sample of the stream (rewards [N, E] in stream order).

    Each arm is played once on the first E samples; then the arm with the largest
    mean + c sqrt(ln t / n_a) is played on sample t (1-based count of samples seen,
    ties to the shallower arm). `side_info` (SplitEE-S): the shallower arms are also
    updated with the same sample's rewards, since their exits were computed anyway.
    """
    n, n_arms = reward.shape
    total = np.zeros(n_arms)
    count = np.zeros(n_arms)
    arms = np.empty(n, dtype=np.int64)
    for t in range(n):
        if t < n_arms:
            arm = t
        else:
            ucb = total / count + c * np.sqrt(np.log(t + 1) / count)
            arm = int(np.argmax(ucb))
        arms[t] = arm
        if side_info and t >= n_arms:
            total[: arm + 1] += reward[t, : arm + 1]
            count[: arm + 1] += 1
        else:
            total[arm] += reward[t, arm]
            count[arm] += 1
    return arms


def early_exit_choice(conf: np.ndarray, alpha: float) -> np.ndarray:
    """Plain early exit on the device, no offloading: first exit with conf >= alpha."""
    fires = conf >= alpha
    fires[:, -1] = True
    return fires.argmax(1)


def cumulative_regret(reward: np.ndarray, arms: np.ndarray) -> np.ndarray:
    """Regret after each sample against the best fixed arm in hindsight, [N]."""
    best = int(reward.sum(0).argmax())
    n = np.arange(len(arms))
    return np.cumsum(reward[:, best] - reward[n, arms])


def summarise(table: ArmTable, arms: np.ndarray, layers: np.ndarray) -> dict:
    """Accuracy, mean cost, offloading rate and mean split layer of a sequence of plays."""
    n = np.arange(len(arms))
    return {
        "accuracy": float(table.correct[n, arms].mean()),
        "avg_cost": float(table.cost[n, arms].mean()),
        "offload_rate": float(table.offloaded[n, arms].mean()),
        "avg_split_layer": float(np.asarray(layers)[arms].mean()),
    }


def simulate(
    logits: np.ndarray,
    labels: np.ndarray,
    layers: np.ndarray,
    cm: CostModel,
    orders: int,
    c: float = 1.0,
    seed: int = 0,
    regret_points: int = 100,
) -> tuple[list[dict], list[dict]]:
    """SplitEE, SplitEE-S and the baselines on `orders` shuffled streams.

    Returns (summary rows, regret-curve rows). Baselines do not depend on the order
    but are reported per order too, so every policy has the same spread columns.
    """
    layers = np.asarray(layers)
    conf = confidences(logits)
    correct_exit = logits.argmax(-1) == np.asarray(labels)[:, None]
    base = arm_table(conf, correct_exit, layers, cm)
    final_cost = cm.lam * layers[-1]
    n, n_arms = conf.shape
    best = int(base.reward.sum(0).argmax())
    fixed = {f"fixed-{layer}": np.full(n, a) for a, layer in enumerate(layers)}
    no_offload = early_exit_choice(conf, cm.alpha)
    rows, curves = [], []
    for order in range(orders):
        perm = np.random.default_rng(seed + order).permutation(n)
        table = ArmTable(
            *(getattr(base, f)[perm] for f in ("reward", "cost", "offloaded", "correct"))
        )
        plays = {
            "splitee": ucb_arms(table.reward, c),
            "splitee-s": ucb_arms(table.reward, c, side_info=True),
            "final-layer": np.full(n, n_arms - 1),
            "best-fixed": np.full(n, best),
            **fixed,
        }
        for policy, arms in plays.items():
            regret = cumulative_regret(table.reward, arms)
            rows.append(
                {
                    "order": order,
                    "policy": policy,
                    **summarise(table, arms, layers),
                    "regret": float(regret[-1]),
                }
            )
            if policy in ("splitee", "splitee-s"):
                steps = np.unique(np.linspace(0, n - 1, min(regret_points, n)).astype(int))
                curves += [
                    {
                        "order": order,
                        "policy": policy,
                        "step": int(s) + 1,
                        "regret": float(regret[s]),
                    }
                    for s in steps
                ]
        ee = no_offload[perm]
        idx = np.arange(n)
        rows.append(
            {
                "order": order,
                "policy": "early-exit",
                "accuracy": float(correct_exit[perm][idx, ee].mean()),
                "avg_cost": float((cm.lam * layers[ee]).mean()),
                "offload_rate": 0.0,
                "avg_split_layer": float(layers[ee].mean()),
                "regret": np.nan,
            }
        )
    for row in rows:
        row["cost_reduction"] = 1.0 - row["avg_cost"] / final_cost
    return rows, curves


def splitee_file(
    logits_path: Path,
    table_path: Path,
    regret_path: Path,
    settings: SplitEESettings,
    alphas,
    split: str,
    run_key: dict,
    seed: int = 0,
) -> pd.DataFrame:
    """Simulate every threshold of `alphas` (one number or a list) and every offloading
    cost of `settings` on a stored transfer prediction and write the summary table and the
    regret curves (TSV, atomically); `run_key` (source, target, method, seed) become their
    first columns. The per-layer cost is `layer_cost` of the stored model's depth."""
    stored = load_exit_logits(logits_path)
    if f"{split}_logits" not in stored:
        raise DataError(f"{logits_path}: no split {split!r} stored; rerun rule predict_transfer")
    num_layers = int(stored.get("num_layers", np.asarray(stored["exit_layers"])[-1]))
    lam = layer_cost(settings, num_layers)
    alphas = [alphas] if np.isscalar(alphas) else list(alphas)
    rows, curves = [], []
    for alpha in alphas:
        for o in settings.offload_costs:
            cm = CostModel(lam=lam, offload=o, alpha=float(alpha))
            r, c = simulate(
                stored[f"{split}_logits"],
                stored[f"{split}_labels"],
                stored["exit_layers"],
                cm,
                settings.orders,
                settings.ucb_c,
                seed,
            )
            key = {**run_key, "offload_cost": o, "alpha": float(alpha)}
            rows += [{**key, "layer_cost": lam, **x} for x in r]
            curves += [{**key, **x} for x in c]
    table, regret = pd.DataFrame(rows), pd.DataFrame(curves)
    for frame, path in ((table, table_path), (regret, regret_path)):
        write_table(frame, path)
    return table
