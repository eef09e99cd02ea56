"""A policy is its module: a toy one (tests/helpers/toy_policy.py), added to the registry
and to nothing else, is swept, run exit by exit, configured and offered by the CLI.
Also the contract every registered policy keeps."""

from pathlib import Path

import numpy as np
import pytest
import toy_policy
import yaml
from snakemake.utils import validate

from early_exit.cli import parser
from early_exit.config.check import check_config, schema_errors, task_policies
from early_exit.exits.policies import (
    POLICIES,
    Outputs,
    RuntimePolicy,
    get_policy,
    runtime_policy,
)
from early_exit.exits.sweep import sweep_stored
from early_exit.support.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


@pytest.fixture
def toy():
    with toy_policy.registered() as policy:
        yield policy
    assert "margin" not in POLICIES


def stored(n=80, exits=(1, 2, 4), classes=3, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, len(exits), classes)) * 2
    return {
        "exit_layers": np.array(exits),
        "num_layers": np.array(4),
        "task_type": np.array("classification"),
        "metric": np.array("accuracy"),
        "dev_logits": logits.astype(np.float32),
        "dev_labels": labels,
        "dev_flops": rng.integers(3, 20, n)[:, None] * np.array(exits)[None, :] * 1e6,
    }


def brute_margin(z_exits, m, scale):
    for i, z in enumerate(z_exits):
        top = sorted(float(v) for v in z)
        if (top[-1] - top[-2]) / scale >= m:
            return i
    return len(z_exits) - 1


def run_exit_by_exit(rule, logits):
    """The engine's loop: ask exit by exit, drop the rows that left."""
    n, n_exits = logits.shape[:2]
    running, chosen = np.arange(n), np.full(n, n_exits - 1)
    state = rule.start(n)
    for i in range(n_exits - 1):
        fires = rule.fires(i, logits[running, i], None, state)
        chosen[running[fires]] = i
        running, state = running[~fires], rule.keep(state, ~fires)
    return chosen


def test_the_sweep_sweeps_a_registered_toy_policy_with_its_option(toy):
    arrays = stored()
    table = sweep_stored(arrays, {"margin": {"num_thresholds": 5, "scale": 2.0}}, ["dev"])
    assert table.policy.tolist() == ["margin"] * 5
    z = arrays["dev_logits"]
    for row in table.itertuples():
        exit_idx = [brute_margin(z[n], row.threshold, 2.0) for n in range(len(z))]
        assert row.avg_exit_layer == pytest.approx(arrays["exit_layers"][exit_idx].mean())


def test_the_runtime_form_of_a_toy_policy_agrees_with_its_sweep(toy):
    z = stored()["dev_logits"]
    out = Outputs(z, np.zeros(len(z), int))
    for m in (0.0, 0.5, 1.5, 3.0):
        rule = runtime_policy("margin", m, options={"scale": 2.0})
        assert isinstance(rule, toy_policy.MarginPolicy) and rule.scale == 2.0
        expected = get_policy("margin").exits(out, np.array([m]), scale=2.0)[0]
        np.testing.assert_array_equal(run_exit_by_exit(rule, z), expected)
    with pytest.raises(ConfigError, match="policy margin: no option tau .*its options: scale"):
        runtime_policy("margin", 1.0, options={"tau": 0.1})


def test_the_config_check_accepts_a_toy_policy_and_checks_its_settings(toy):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["sweep"]["policies"]["margin"] = {"scale": 2.0}
    config["tasks"]["bbc-news"]["policies"] = ["entropy", "margin"]
    schema_errors(config, SCHEMA)
    validate(config, str(SCHEMA))
    check_config(config)
    assert task_policies(config, "bbc-news")["margin"] == {"scale": 2.0, "num_thresholds": 9}
    config["sweep"]["policies"]["margin"] = {"scale": 0}
    with pytest.raises(ConfigError, match="sweep.policies.margin.scale: 0 is less than or equal"):
        check_config(config)


def test_the_cli_offers_a_toy_policys_option(toy, capsys):
    args = parser().parse_args(["predict", "run", "--policy", "margin", "--scale", "2"])
    assert args.scale == 2.0 and args.tau is None
    with pytest.raises(SystemExit):
        parser().parse_args(["predict", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "--scale SCALE margin: the margin is divided by this (default 1.0)" in shown
    assert "--tau TAU patience: regression only" in shown


def test_unknown_policies_and_settings_are_named_on_load():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(config, str(SCHEMA))
    config["sweep"]["policies"]["margin"] = {}
    with pytest.raises(ConfigError, match="sweep.policies.margin: .*unknown policy 'margin'"):
        check_config(config)
    del config["sweep"]["policies"]["margin"]
    config["sweep"]["policies"]["patience"]["taux"] = 0.2
    with pytest.raises(ConfigError, match=r"sweep.policies.patience: .*\('taux' was unexpected"):
        check_config(config)


@pytest.mark.parametrize("name", list(POLICIES))
def test_every_policy_keeps_the_contract(name):
    """Options are settings with a default; the runtime form is a RuntimePolicy whose
    `never_fires` knob fires at no exit (what the engine benchmark relies on)."""
    policy = get_policy(name)
    assert policy.name == name
    for option in policy.options:
        assert "default" in policy.settings[option]
    if policy.runtime is None:
        assert policy.never_fires is None
        return
    assert issubclass(policy.runtime, RuntimePolicy)
    rng = np.random.default_rng(0)
    rule = runtime_policy(name, policy.never_fires, policy.task_types[0], np.ones(4))
    state = rule.start(30)
    for i in range(4):
        logits = rng.normal(size=(30, 3)).astype(np.float32)
        assert not rule.fires(i, logits, rng.uniform(size=30), state).any()
