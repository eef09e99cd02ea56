"""The workflow's shared planning: which runs the timed stages measure.

The rule files hold rules only (docs/architecture.md); what several of them read (the
runs the latency stage times, the runs the serving stage serves) is decided here, once,
and bound in `workflow/rules/common.smk` as `TIMED` and `SERVED`.
"""

from __future__ import annotations

from early_exit.config.check import task_policies
from early_exit.exits.policies import get_policy
from early_exit.support.layout import run_dir


def timed_runs(
    config: dict, tasks: list[str], dynamic: list[str], method_info: dict, seeds: list
) -> list[dict]:
    """Every early-exit run (`dynamic` methods, every task and seed) whose criterion its
    task sweeps, with what timing it needs: `run_key`, `run_dir`, `data_dir`, `policy` and
    the criterion's own `options` (e.g. patience's tau) as its sweep settings give them."""
    runs = []
    for task in tasks:
        policies = task_policies(config, task)
        for method in dynamic:
            policy = method_info[method]["criterion"]
            if policy not in policies:
                continue
            options = get_policy(policy).option_values(policies[policy])
            for seed in seeds:
                runs.append(
                    {
                        "run_key": {"task": task, "method": method, "seed": str(seed)},
                        "run_dir": run_dir(task, method, seed),
                        "data_dir": f"data/{task}",
                        "policy": policy,
                        "options": options,
                    }
                )
    return runs


def served_runs(timed: list[dict], task: str, seed) -> list[dict]:
    """The timed runs the serving stage measures: those of one task (`serving.task`) and
    one seed (the first); empty when the config does not run that task."""
    return [
        run
        for run in timed
        if run["run_key"]["task"] == task and run["run_key"]["seed"] == str(seed)
    ]
