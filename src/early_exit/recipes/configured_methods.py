"""Methods as the workflow runs them: recipe instances read from the config.

A config's `methods` entry names a recipe and its settings; a `static` entry with
`layers: [k, ...]` becomes one instance per k. Everything that needs to know which
runs exist, where each starts and with which settings (the rules' input functions,
the config checker, the ELUE roles) asks this module.
"""

from __future__ import annotations

import copy

from early_exit.recipes import get_recipe


def training_settings(config: dict, method: str, task: str | None = None) -> dict:
    """The recipe's paper defaults (e.g. Sledgehammer's constant learning rate), the global
    training settings over them, the method's own overrides on top, and for `task` the
    method's `task_training.<task>` over those (COST-EFF's released teachers train MRPC 12
    epochs, SST-2 5, ...)."""
    spec = method_instances(config)[method]
    merged = copy.deepcopy(get_recipe(spec["recipe"]).training_defaults)
    merged.update(config["training"])
    merged.update(spec.get("training", {}))
    if task is not None:
        merged.update((spec.get("task_training") or {}).get(task, {}))
    return merged


def trained_alike(config: dict, a: str, b: str) -> bool:
    """Whether methods `a` and `b` start from the same backbone with the same training
    settings (with the same seed and recipe, they train the same model)."""
    methods = method_instances(config)
    same_start = method_backbone(config, methods[a]) == method_backbone(config, methods[b])
    same_tasks = (methods[a].get("task_training") or {}) == (methods[b].get("task_training") or {})
    return (
        same_start and same_tasks and training_settings(config, a) == training_settings(config, b)
    )


def first_stage_source(config: dict, method: str) -> str | None:
    """The method whose run already trains `method`'s first stage (DeeBERT's stage 1 is
    plain fine-tuning): same recipe as that stage, backbone and training settings; the
    same seed is matched by the rule. None: `method` trains all its stages itself."""
    methods = method_instances(config)
    spec = methods[method]
    wanted = get_recipe(spec["recipe"]).first_stage
    if wanted is None or not spec.get("share_first_stage", True):
        return None
    for name, other in methods.items():
        if (
            other["recipe"] == wanted
            and not other.get("exit_layers")
            and trained_alike(config, name, method)
        ):
            return name
    return None


def method_instances(config: dict) -> dict[str, dict]:
    """Methods as the workflow runs them: a `static` entry with `layers: [k, ...]`
    becomes one method per k (`static-k`, exits at layer k), the points of the
    static reference curve."""
    instances = {}
    for name, spec in config["methods"].items():
        if spec.get("layers"):
            for k in spec["layers"]:
                instance = {key: v for key, v in spec.items() if key != "layers"}
                instances[f"{name}-{k}"] = {**instance, "exit_layers": [k], "family": name}
        else:
            instances[name] = {**spec, "family": name}
    return instances


def method_backbone(config: dict, method: dict) -> dict:
    """The backbone a method starts from: its own `backbone` entry over the global one."""
    return {**config["backbone"], **method.get("backbone", {})}
