"""Exit policies: one module per policy, and this registry of them.

A policy module defines its vectorised decision over stored logits (the sweeps), its
knob grid, its sweep settings and options, its runtime form (the engine; see `base` for
the contract both forms share) and how tables and slides name its knob, all in one
`Policy` called `POLICY`. Every reader (the sweep, the engine, `early-exit predict`, the
latency rule, the config check, the benchmarks) asks the registry, never a name.
Every policy is checked against a per-example loop in the tests.

| policy     | module        | knob | fires at exit i when                         | from        |
|------------|---------------|------|----------------------------------------------|-------------|
| entropy    | `entropy`     | S    | H(softmax(z_i)) < S                          | DeeBERT     |
| patience   | `patience`    | t    | t consecutive exits agree on the argmax      | PABEE       |
|            |               |      | (regression: |z_i - z_{i-1}| < tau, t times) |             |
| confidence | `confidence`  | c    | max softmax(z_i / T_i) >= c, T fitted on dev | Sledgehammer|
| learned    | `learned`     | tau  | learned gate u_i < tau (u_i: P(exit i wrong))| BERxiT      |
| oracle     | `oracle`      | -    | exit i is correct (the upper bound)          |             |

A learned policy reads per-exit scores stored beside the logits (`Outputs.scores`,
e.g. BERxiT's gate outputs); on a run without them it does not apply
(`Policy.needs_scores`, `Policy.applies`).

Adding a policy: write its module (a `POLICY`), add it to `MODULES` below (or call
`register`), and configure it under `sweep.policies`.
"""

from __future__ import annotations

import numpy as np

from early_exit.exits.policies import confidence, entropy, learned, oracle, patience
from early_exit.exits.policies.base import Outputs, Policy, RuntimePolicy, as_numpy, first_true
from early_exit.support.errors import ConfigError

__all__ = [
    "POLICIES",
    "Outputs",
    "Policy",
    "RuntimePolicy",
    "as_numpy",
    "bound_names",
    "check_policy",
    "check_runtime",
    "first_true",
    "get_policy",
    "register",
    "runtime_policy",
]

MODULES = (entropy, patience, confidence, learned, oracle)
POLICIES: dict[str, Policy] = {}


def register(policy: Policy) -> Policy:
    """Make `policy` known by its name to every reader of the registry."""
    if policy.name in POLICIES:
        raise ConfigError(f"policy {policy.name!r} is registered already")
    POLICIES[policy.name] = policy
    return policy


for _module in MODULES:
    register(_module.POLICY)


def get_policy(name: str) -> Policy:
    if name not in POLICIES:
        raise ConfigError(
            f"policy: unknown policy {name!r}; allowed: {', '.join(sorted(POLICIES))}"
        )
    return POLICIES[name]


def bound_names() -> list[str]:
    """The policies that are upper bounds (they read the labels; `Policy.bound`)."""
    return [name for name, policy in POLICIES.items() if policy.bound]


def check_policy(
    name: str, task_type: str, n_exits: int | None = None, cfg: dict | None = None
) -> None:
    """Raise ConfigError when a policy cannot work for a task or a model (with `n_exits`
    exits, when known, and its sweep settings `cfg`)."""
    policy = get_policy(name)
    if task_type not in policy.task_types:
        allowed = [p for p, pol in POLICIES.items() if task_type in pol.task_types]
        raise ConfigError(
            f"policy {name!r} does not apply to {task_type} tasks; allowed: {', '.join(allowed)}"
        )
    if policy.check is not None and n_exits is not None:
        policy.check(cfg or {}, n_exits)


# ----------------------------------------------------------------------------- runtime


def runtime_names() -> list[str]:
    """The policies the engine can run (those with a runtime form)."""
    return sorted(name for name, policy in POLICIES.items() if policy.runtime is not None)


def check_runtime(name: str, task_type: str) -> Policy:
    """The policy `name`; ConfigError unless it has a runtime form for `task_type`."""
    allowed = ", ".join(runtime_names())
    if name in POLICIES and POLICIES[name].runtime is None:
        raise ConfigError(
            f"policy {name!r} is not a runtime policy: it has no runtime form, the engine "
            f"cannot run it (runtime policies: {allowed})"
        )
    if name not in POLICIES:
        raise ConfigError(f"policy: unknown runtime policy {name!r}; allowed: {allowed}")
    check_policy(name, task_type)
    return POLICIES[name]


def runtime_policy(
    name: str,
    knob: float,
    task_type: str = "classification",
    temperatures: np.ndarray | None = None,
    options: dict | None = None,
) -> RuntimePolicy:
    """The runtime form of policy `name` at knob value `knob`; `options` are the policy's
    own (e.g. patience's tau), each defaulting to the policy's default."""
    policy = check_runtime(name, task_type)
    options = options or {}
    unknown = sorted(set(options) - set(policy.options))
    if unknown:
        known = ", ".join(policy.options) or "none"
        raise ConfigError(f"policy {name}: no option {', '.join(unknown)} (its options: {known})")
    temps = None if temperatures is None else np.asarray(temperatures, dtype=np.float64)
    return policy.runtime(policy.runtime_knob(knob), task_type, temps, **options)
