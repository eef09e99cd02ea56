"""Checks of the workflow config that a JSON schema cannot express.

The schema (workflow/schemas/config.schema.yaml) catches missing and mistyped
keys; this module catches what needs code: unknown tasks, recipes, metrics and
policies, paths that do not exist, exit layers outside the backbone. Metric and policy
names are not listed in the schema: they live in `data.registry` and
`exits.policies`, and each policy's settings are checked against the schema fragment
its module declares (`Policy.settings`), whose defaults are filled in here. It runs
when the Snakefile loads, so a broken config stops before any job starts.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import jsonschema
import yaml

from early_exit.analysis.roles import elue_reference
from early_exit.config.splitee_settings import check_splitee
from early_exit.data.registry import resolve_task
from early_exit.exits.metrics import check_metric
from early_exit.exits.policies import check_policy, get_policy
from early_exit.modeling.backbone_source import (
    backbone_config,
    backbone_num_layers,
    cached_backbone,
)
from early_exit.modeling.exit_layers import resolve_exit_layers
from early_exit.modeling.widths import check_slenderize
from early_exit.recipes import RECIPES, get_recipe
from early_exit.recipes.configured_methods import method_backbone, method_instances
from early_exit.support.errors import ConfigError


def schema_errors(config: dict, schema_path: str | Path) -> None:
    """Raise ConfigError listing each schema violation as `key: problem`, one per line.

    Snakemake's own `validate` (which also fills in defaults) reports the same errors
    but prints the whole schema; this names the keys and nothing else.
    """
    lines = _errors(yaml.safe_load(Path(schema_path).read_text()), config)
    if lines:
        raise ConfigError("\n  ".join(["config does not match the schema:", *lines]))


def _errors(schema: dict, value, where: tuple[str, ...] = ()) -> list[str]:
    """Each violation of a JSON schema as `key: problem`, the key under `where`."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
    keys = [".".join([*where, *map(str, e.absolute_path)]) or "(top level)" for e in errors]
    return [f"{key}: {e.message}" for key, e in zip(keys, errors, strict=True)]


def check_policy_settings(config: dict) -> None:
    """Each entry of sweep.policies names a registered policy and matches the settings its
    module declares; the declared defaults are filled in, as the schema's are."""
    for name, cfg in config["sweep"]["policies"].items():
        try:
            policy = get_policy(name)
        except ConfigError as err:
            raise ConfigError(f"sweep.policies.{name}: {err}") from None
        schema = {"type": "object", "additionalProperties": False, "properties": policy.settings}
        problems = _errors(schema, cfg, ("sweep", "policies", name))
        if problems:
            raise ConfigError("\n  ".join(problems))
        for key, spec in policy.settings.items():
            if "default" in spec:
                cfg.setdefault(key, spec["default"])


def task_policies(config: dict, task: str) -> dict:
    """The sweep policies for a task: the global ones, or the subset the task names."""
    policies = config["sweep"]["policies"]
    chosen = config["tasks"][task].get("policies")
    if chosen is None:
        return policies
    missing = [p for p in chosen if p not in policies]
    if missing:
        raise ConfigError(
            f"tasks.{task}.policies: {missing} not configured under sweep.policies "
            f"(configured: {', '.join(policies)})"
        )
    return {p: policies[p] for p in chosen}


def _check_teacher(method: dict, instances: dict, config: dict) -> None:
    """A slenderized method (COST-EFF) names a teacher method trained by stages and a target
    width that fits its model; no other method has either key."""
    recipe = get_recipe(method["recipe"])
    if recipe.trained_by != "slenderize":
        for key in ("teacher", "slenderize"):
            if key in method:
                raise ConfigError(f"{key}: only for a recipe trained by slenderizing (costeff)")
        return
    trained = {m for m, s in instances.items() if get_recipe(s["recipe"]).trained_by == "stages"}
    teacher = method.get("teacher")
    if teacher not in trained:
        raise ConfigError(
            f"teacher: {teacher!r} is not a trained method of this config "
            f"(one of: {', '.join(m for m in instances if m in trained)})"
        )
    if "slenderize" not in method:
        raise ConfigError(f"slenderize: {recipe.name} needs its target width (slenderize.heads)")
    unknown = sorted(set(method["slenderize"].get("tasks", {})) - set(config["tasks"]))
    if unknown:
        raise ConfigError(f"slenderize.tasks: {unknown} are not tasks of this config")
    found = backbone_config(cached_backbone(config, method_backbone(config, instances[teacher])))
    if found is not None:
        check_slenderize(SimpleNamespace(**found), method["slenderize"])


def _check_pretraining(method: dict) -> None:
    if not method.get("pretrain"):
        return
    recipe = get_recipe(method["recipe"])
    if recipe.pretraining is None:
        able = [name for name, r in RECIPES.items() if r.pretraining]
        raise ConfigError(
            f"pretrain: recipe {recipe.name!r} has no pre-training stage "
            f"(recipes with one: {', '.join(able)})"
        )
    if method.get("backbone", {}).get("format") == "elasticbert":
        raise ConfigError("pretrain: the backbone is already an ElasticBERT checkpoint")


# Source keys that name local paths (an hf `path` may be a hub id, so it is not checked).
LOCAL_PATH_KEYS = {"bbc": ["corpus_dir"], "files": ["train", "dev", "test"], "hf": []}


def _check_local_paths(name: str, source: dict) -> None:
    keys = LOCAL_PATH_KEYS[source["type"]]
    if source["type"] == "files":  # plus extra evaluation splits such as test_mismatched
        keys = keys + [k for k in source if k.startswith("test_")]
    for key in keys:
        value = source.get(key)
        if value is not None and not Path(value).exists():
            raise ConfigError(
                f"tasks.{name}.source.{key}: path {value!r} does not exist "
                f"(relative paths are resolved against {Path.cwd()})"
            )


def _check_method(name: str, method: dict, config: dict) -> int | None:
    """Check one method instance; return its number of exits when knowable offline
    (a local or packaged backbone, or a hub model already in `hub_cache`)."""
    recipe = get_recipe(method["recipe"])
    if method.get("criterion"):
        try:
            get_policy(method["criterion"])
        except ConfigError as err:
            raise ConfigError(f"criterion: {err}") from None
    _check_teacher(method, method_instances(config), config)
    for task in method.get("task_training") or {}:
        if task not in config["tasks"]:
            raise ConfigError(
                f"task_training.{task}: unknown task; configured: {', '.join(config['tasks'])}"
            )
    _check_pretraining(method)
    criterion = method.get("criterion", recipe.criterion)
    if criterion and get_policy(criterion).needs_scores and not recipe.exit_gate:
        raise ConfigError(
            f"criterion: {criterion!r} needs a learned exit gate, which recipe "
            f"{method['recipe']!r} does not train (use recipe berxit)"
        )
    backbone = cached_backbone(config, method_backbone(config, method))
    num_layers = backbone_num_layers(backbone)
    if num_layers is None:
        return None
    exits = resolve_exit_layers(method.get("exit_layers", recipe.default_exits), num_layers)
    recipe.check(exits, num_layers)
    return len(exits)


def _check_serving(config: dict) -> None:
    """The serving stage serves one configured task: `serving.task`, or the first task when
    it is not set (filled in here, so that every config's deck has its serving slides)."""
    serving = config.setdefault("serving", {})
    task = serving.get("task")
    if task is None:
        serving["task"] = next(iter(config["tasks"]))
    elif task not in config["tasks"]:
        raise ConfigError(
            f"serving.task: {task!r} is not one of the configured tasks "
            f"({', '.join(config['tasks'])}); name one, or leave it out for the first"
        )


def check_config(config: dict) -> None:
    """Raise ConfigError naming the first key that cannot work; fill in the defaults of
    each policy's settings (`check_policy_settings`)."""
    tasks = {name: resolve_task(name, spec) for name, spec in config["tasks"].items()}
    for name, task in tasks.items():
        try:
            check_metric(task.metric)
        except ConfigError as err:
            raise ConfigError(f"tasks.{name}.{err}") from None
        _check_local_paths(name, task.source)
    check_policy_settings(config)
    _check_serving(config)
    exits = {}
    check_splitee(config, tasks, method_instances(config))
    for name, method in method_instances(config).items():
        try:
            exits[name] = _check_method(name, method, config)
        except ConfigError as err:
            raise ConfigError(f"methods.{method['family']}.{err}") from None
    elue_reference(config)
    for name, task in tasks.items():
        for policy, cfg in task_policies(config, name).items():
            for method, n_exits in exits.items():
                try:
                    check_policy(policy, task.task_type, n_exits if n_exits != 1 else None, cfg)
                except ConfigError as err:
                    raise ConfigError(
                        f"sweep.policies.{policy} for task {name} / method {method}: {err}"
                    ) from None
