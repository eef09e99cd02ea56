"""Exit policies as pure, vectorised functions over stored logits.

Each policy maps the stored outputs of one split (logits [N, E, C] for N examples
and E exits) and a grid of K knob values to the exit each example takes under each
value: an index array [K, N] into the exits. The last exit answers whenever no
earlier exit fires. Every policy is checked against a per-example loop in the tests.
A learned policy reads per-exit scores stored beside the logits (`Outputs.scores`,
e.g. BERxiT's gate outputs); a run without them has no such policy (`has_scores`).

| policy     | knob | fires at exit i when                          | from        |
|------------|------|-----------------------------------------------|-------------|
| entropy    | S    | H(softmax(z_i)) < S                           | DeeBERT     |
| patience   | t    | t consecutive exits agree on the argmax       | PABEE       |
|            |      | (regression: |z_i - z_{i-1}| < tau, t times)  |             |
| confidence | c    | max softmax(z_i / T_i) >= c, T fitted on dev  | Sledgehammer|
| learned    | tau  | learned gate u_i < tau (u_i: P(exit i wrong)) | BERxiT      |
| oracle     | -    | exit i is correct (the upper bound)           |             |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import log_softmax

from early_exit.support.errors import ConfigError


@dataclass
class Outputs:
    """What policies see of one split: stored logits, labels and calibration."""

    logits: np.ndarray  # [N, E, C]
    labels: np.ndarray  # [N]
    task_type: str = "classification"
    temperatures: np.ndarray | None = None  # [E], from calibration on dev
    scores: np.ndarray | None = None  # [N, E], a learned gate's per-exit outputs (if any)

    @property
    def n_exits(self) -> int:
        return self.logits.shape[1]


def entropy(logits: np.ndarray) -> np.ndarray:
    """Entropy of softmax(logits) over the last axis, computed stably via log-softmax."""
    logp = log_softmax(logits.astype(np.float64), axis=-1)
    return -(np.exp(logp) * logp).sum(-1)


def first_true(fires: np.ndarray) -> np.ndarray:
    """Index of the first exit that fires along the last axis; the last exit if none does."""
    fires = fires.copy()
    fires[..., -1] = True
    return fires.argmax(-1)


def entropy_exits(out: Outputs, thresholds: np.ndarray) -> np.ndarray:
    """DeeBERT: exit at the first exit whose prediction entropy is below S.

    The check is strict (H < S), so S = 0 never exits early; for C classes,
    S > ln C makes every example leave at the first exit.
    """
    ent = entropy(out.logits)  # [N, E]
    return first_true(ent[None, :, :] < np.asarray(thresholds)[:, None, None])


def _streaks(same: np.ndarray) -> np.ndarray:
    """Length of the run of consecutive True values ending at each position (last axis)."""
    streak = np.zeros(same.shape, dtype=np.int64)
    run = np.zeros(same.shape[:-1], dtype=np.int64)
    for i in range(same.shape[-1]):
        run = np.where(same[..., i], run + 1, 0)
        streak[..., i] = run
    return streak


def agrees(previous: np.ndarray, current: np.ndarray, task_type: str, tau: float) -> np.ndarray:
    """PABEE's agreement of consecutive exits (logits [..., C]): same argmax, or for
    regression |z_i - z_{i-1}| < tau."""
    if task_type == "regression":
        return np.abs(current[..., 0] - previous[..., 0]) < tau
    return current.argmax(-1) == previous.argmax(-1)


def patience_exits(out: Outputs, patience: np.ndarray, tau: float = 0.1) -> np.ndarray:
    """PABEE: exit at the first exit where the counter of agreeing exits reaches t.

    Classification: the counter grows when exit i's argmax equals exit i-1's and
    resets otherwise. Regression: it grows when |z_i - z_{i-1}| < tau. So the
    earliest possible exit is index t (layer t+1 with exits at every layer).
    """
    z = out.logits
    same = agrees(z[:, :-1], z[:, 1:], out.task_type, tau)  # [N, E-1]
    counter = np.concatenate([np.zeros((len(z), 1), np.int64), _streaks(same)], axis=1)
    return first_true(counter[None, :, :] >= np.asarray(patience)[:, None, None])


def calibrated_confidence(logits: np.ndarray, temperatures: np.ndarray) -> np.ndarray:
    """max softmax(z / T) over the last axis; `temperatures` has the shape of logits[..., 0]
    (or broadcasts to it). The runtime policies call this too, so both agree bit for bit."""
    scaled = logits.astype(np.float64) / np.asarray(temperatures, dtype=np.float64)[..., None]
    return np.exp(log_softmax(scaled, axis=-1).max(-1))


def confidence(out: Outputs) -> np.ndarray:
    """Calibrated confidence max softmax(z_i / T_i), shape [N, E]."""
    temps = np.ones(out.n_exits) if out.temperatures is None else np.asarray(out.temperatures)
    return calibrated_confidence(out.logits, temps)


def confidence_exits(out: Outputs, thresholds: np.ndarray) -> np.ndarray:
    """Sledgehammer: exit at the first exit whose calibrated confidence reaches c."""
    return first_true(confidence(out)[None] >= np.asarray(thresholds)[:, None, None])


def gate_fires(scores: np.ndarray, threshold) -> np.ndarray:
    """BERxiT's rule, shared by the sweep and the runtime policy: u_i < threshold."""
    return np.asarray(scores) < threshold


def learned_exits(out: Outputs, thresholds: np.ndarray) -> np.ndarray:
    """BERxiT: exit at the first exit whose learned gate output u_i is below tau.

    The gate predicts whether the exit is wrong, so tau = 0 never exits early and
    tau above every score exits at the first exit.
    """
    if out.scores is None:
        raise ConfigError(
            "policy learned: this run stores no gate outputs (a model without a gate)"
        )
    return first_true(gate_fires(out.scores[None], np.asarray(thresholds)[:, None, None]))


def oracle_exits(out: Outputs, grid: np.ndarray) -> np.ndarray:
    """Exit at the first exit that is correct (the last one when none is): an upper bound."""
    correct = out.logits.argmax(-1) == out.labels[:, None]
    return np.broadcast_to(first_true(correct), (len(grid), len(out.labels))).copy()


# ----------------------------------------------------------------------------- grids


def entropy_grid(out: Outputs, cfg: dict) -> np.ndarray:
    """From 0 (never exit early) to just above ln C (always exit first)."""
    return np.linspace(0.0, np.log(out.logits.shape[-1]) * 1.001, cfg["num_thresholds"])


def patience_grid(out: Outputs, cfg: dict) -> np.ndarray:
    """Patience values 1..E-1 (E-1 = the full model), or the configured list."""
    values = cfg.get("values", "all")
    if values == "all":
        return np.arange(1, out.n_exits)
    return np.asarray(values)


def confidence_grid(out: Outputs, cfg: dict) -> np.ndarray:
    """From 1/C (always exit first) to just above 1 (never exit early)."""
    low = 1.0 / out.logits.shape[-1]
    return np.append(np.linspace(low, 1.0, cfg["num_thresholds"] - 1), np.nextafter(1.0, 2.0))


def learned_grid(out: Outputs, cfg: dict) -> np.ndarray:
    """From 0 (never exit early) to just above 1 (always exit first): gate outputs are
    sigmoids."""
    return np.append(np.linspace(0.0, 1.0, cfg["num_thresholds"] - 1), np.nextafter(1.0, 2.0))


def oracle_grid(out: Outputs, cfg: dict) -> np.ndarray:
    return np.zeros(1)


@dataclass(frozen=True)
class Policy:
    """One exit policy: how it decides, and how tables, figures and slides name its knob."""

    name: str
    exits: Callable[..., np.ndarray]  # (outputs, grid, **options) -> [K, N] exit indices
    grid: Callable[[Outputs, dict], np.ndarray]
    task_types: tuple[str, ...]
    options: tuple[str, ...] = ()  # config keys passed on to `exits`
    symbol: str = "knob"  # the knob's symbol in the papers (LaTeX, without $)
    knob: str = "knob"  # the knob's name in words
    digits: int = 2  # decimals when a knob value is printed
    rule: str = ""  # when an example exits, in words (markdown + LaTeX)
    needs_scores: bool = False  # reads a learned gate's stored scores (not applicable without)

    def applies(self, out: Outputs) -> bool:
        """Whether this run can use the policy (a learned one needs stored gate scores)."""
        return out.scores is not None or not self.needs_scores

    def format_knob(self, value: float) -> str:
        return f"{value:.{self.digits}f}"

    def decide(self, out: Outputs, cfg: dict) -> tuple[np.ndarray, np.ndarray]:
        """The knob grid and the exit index of every example under every knob value."""
        grid = self.grid(out, cfg)
        options = {key: cfg[key] for key in self.options if key in cfg}
        return grid, self.exits(out, grid, **options)


POLICIES = {
    "entropy": Policy(
        "entropy",
        entropy_exits,
        entropy_grid,
        ("classification",),
        symbol="S",
        knob="entropy threshold",
        rule="at the first layer $i$ with entropy $H(p_i) < S$",
    ),
    "patience": Policy(
        "patience",
        patience_exits,
        patience_grid,
        ("classification", "regression"),
        options=("tau",),
        symbol="t",
        knob="patience",
        digits=0,
        rule="once $t$ consecutive exits agree on the answer",
    ),
    "confidence": Policy(
        "confidence",
        confidence_exits,
        confidence_grid,
        ("classification",),
        symbol="c",
        knob="confidence threshold",
        rule="at the first layer $i$ with calibrated confidence "
        "$\\max_c \\mathrm{softmax}(z_i / T_i)_c \\ge c$",
    ),
    "learned": Policy(
        "learned",
        learned_exits,
        learned_grid,
        ("classification", "regression"),
        symbol="\\tau",
        knob="gate threshold",
        digits=3,
        rule="at the first layer $i$ whose learned gate predicts a correct answer, "
        "$u_i = \\sigma(w^\\top h_i + b) < \\tau$",
        needs_scores=True,
    ),
    "oracle": Policy(
        "oracle",
        oracle_exits,
        oracle_grid,
        ("classification",),
        rule="at the first exit that is correct (an upper bound, not a runtime policy)",
    ),
}


def get_policy(name: str) -> Policy:
    if name not in POLICIES:
        raise ConfigError(
            f"policy: unknown policy {name!r}; allowed: {', '.join(sorted(POLICIES))}"
        )
    return POLICIES[name]


def check_policy(
    name: str, task_type: str, n_exits: int | None = None, cfg: dict | None = None
) -> None:
    """Raise ConfigError when a policy cannot work for a task or a model."""
    policy = get_policy(name)
    if task_type not in policy.task_types:
        allowed = [p for p, pol in POLICIES.items() if task_type in pol.task_types]
        raise ConfigError(
            f"policy {name!r} does not apply to {task_type} tasks; allowed: {', '.join(allowed)}"
        )
    values = (cfg or {}).get("values", "all")
    if name == "patience" and n_exits is not None and values != "all":
        bad = [t for t in values if not 1 <= t <= n_exits - 1]
        if bad:
            raise ConfigError(
                f"patience {bad} impossible with {n_exits} exits; allowed: 1..{n_exits - 1}"
            )
