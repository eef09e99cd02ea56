"""Checks of the workflow config that a JSON schema cannot express.

The schema (workflow/schemas/config.schema.yaml) catches missing and mistyped
keys; this module catches what needs code: unknown tasks, recipes and policies,
paths that do not exist, exit layers outside the backbone. It runs when the
Snakefile loads, so a broken config stops before any job starts.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import yaml

from early_exit.data.registry import resolve_task
from early_exit.errors import ConfigError
from early_exit.exits.metrics import check_metric
from early_exit.exits.policies import check_policy, get_policy
from early_exit.modeling.backbone_source import resolve_backbone
from early_exit.modeling.exit_layers import resolve_exit_layers
from early_exit.modeling.widths import check_slenderize
from early_exit.recipes import get_recipe
from early_exit.workflow.download import cache_name, dataset_dir, model_dir
from early_exit.workflow.splitee_config import check_splitee


def schema_errors(config: dict, schema_path: str | Path) -> None:
    """Raise ConfigError listing each schema violation as `key: problem`, one per line.

    Snakemake's own `validate` (which also fills in defaults) reports the same errors
    but prints the whole schema; this names the keys and nothing else.
    """
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = [
            f"{'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}" for e in errors
        ]
        raise ConfigError("\n  ".join(["config does not match the schema:", *lines]))


def training_settings(config: dict, method: str) -> dict:
    """The recipe's paper defaults (e.g. Sledgehammer's constant learning rate), the global
    training settings over them, and the method's own overrides on top."""
    spec = method_instances(config)[method]
    merged = copy.deepcopy(get_recipe(spec["recipe"]).training_defaults)
    merged.update(config["training"])
    merged.update(spec.get("training", {}))
    return merged


def trained_alike(config: dict, a: str, b: str) -> bool:
    """Whether methods `a` and `b` start from the same backbone with the same training
    settings (with the same seed and recipe, they train the same model)."""
    methods = method_instances(config)
    same_start = method_backbone(config, methods[a]) == method_backbone(config, methods[b])
    return same_start and training_settings(config, a) == training_settings(config, b)


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


def curve_backbones(config: dict) -> list[str]:
    """Backbones that have static reference-curve models (recipe `static`), in config order."""
    found = []
    for method in method_instances(config).values():
        name = method_backbone(config, method)["name"]
        if get_recipe(method["recipe"]).reference_curve and name not in found:
            found.append(name)
    return found


def elue_reference(config: dict) -> str | None:
    """The backbone whose static curve is the ELUE reference (`analysis.elue_reference`,
    or the one backbone of the static baselines); None without static baselines."""
    declared = config.get("analysis", {}).get("elue_reference")
    backbones = curve_backbones(config)
    key = "analysis.elue_reference"
    if declared is not None:
        if declared not in backbones:
            known = ", ".join(backbones) or "none: no method uses recipe static"
            raise ConfigError(
                f"{key}: no static baselines on backbone {declared!r} (static curves: {known})"
            )
        return declared
    if len(backbones) > 1:
        raise ConfigError(
            f"{key}: the static baselines use several backbones ({', '.join(backbones)}); "
            "name the one whose curve is the ELUE reference"
        )
    return backbones[0] if backbones else None


def full_depth_point(config: dict, name: str) -> bool:
    """Whether `name` (a `finetune` run) is the full-depth point of its backbone's static
    curve: the static baselines of that backbone stop short of the last layer and are
    trained with the same settings, so fine-tuning all L layers with one head on layer L
    is exactly the missing static-L model, trained once instead of twice."""
    methods = method_instances(config)
    spec = methods[name]
    if spec["recipe"] != "finetune" or spec.get("exit_layers"):
        return False
    backbone = method_backbone(config, spec)
    num_layers = backbone_num_layers(cached_backbone(config, backbone))
    static = {
        m: s
        for m, s in methods.items()
        if get_recipe(s["recipe"]).reference_curve and method_backbone(config, s) == backbone
    }
    return (
        num_layers is not None
        and bool(static)
        and all(s["exit_layers"] != [num_layers] for s in static.values())
        and all(trained_alike(config, m, name) for m in static)
    )


def method_info(config: dict) -> dict[str, dict]:
    """Per method instance, what the notebooks and the deck need: recipe, reported
    criterion, whether it is a single-exit baseline (`static`), its backbone, whether it
    is a point of its backbone's reference curve (`curve`) and the backbone whose curve
    it is scored against (`reference`; the declared one, or with
    `analysis.elue_per_backbone` its own backbone when that has a static curve)."""
    reference = elue_reference(config)
    own_curves = set(curve_backbones(config))
    per_backbone = config.get("analysis", {}).get("elue_per_backbone", False)
    info = {}
    for name, spec in method_instances(config).items():
        recipe = get_recipe(spec["recipe"])
        backbone = method_backbone(config, spec)["name"]
        curve = recipe.reference_curve or full_depth_point(config, name)
        scored = backbone if (curve or per_backbone) and backbone in own_curves else reference
        info[name] = {
            "recipe": recipe.name,
            "criterion": spec.get("criterion", recipe.criterion),
            "static": recipe.static,
            "backbone": backbone,
            "curve": curve,
            "reference": scored,
        }
    return info


def is_hub_id(name: str) -> bool:
    """A hub repository id rather than a packaged model or a local directory."""
    return (
        resolve_backbone(name) == name
        and not name.startswith((".", "/", "~"))
        and not Path(name).exists()
    )


def _backbones(config: dict) -> list[dict]:
    specs = [config["backbone"]]
    specs += [method_backbone(config, m) for m in method_instances(config).values()]
    return specs


def hub_models(config: dict) -> dict[str, dict]:
    """Hub models the config uses, by cache directory name (empty without `hub_cache`)."""
    if not config.get("hub_cache"):
        return {}
    return {
        cache_name(b["name"]): {"repo": b["name"], "revision": b.get("revision")}
        for b in _backbones(config)
        if is_hub_id(b["name"])
    }


def hub_datasets(config: dict) -> dict[str, dict]:
    """Hub datasets the config's tasks use, by cache directory name (empty without `hub_cache`)."""
    if not config.get("hub_cache"):
        return {}
    found = {}
    for spec in config["tasks"].values():
        source = spec.get("source") or {}
        if source.get("type") == "hf" and not Path(source["path"]).exists():
            found[cache_name(source["path"], source.get("name"))] = {
                "path": source["path"],
                "name": source.get("name"),
                "revision": source.get("revision"),
            }
    return found


def cached_backbone(config: dict, backbone: dict) -> dict:
    """The backbone entry with a hub id replaced by its copy in `hub_cache`, if one is used."""
    if config.get("hub_cache") and is_hub_id(backbone["name"]):
        return {**backbone, "name": str(model_dir(config["hub_cache"], backbone["name"]))}
    return backbone


def cached_task(config: dict, task: str) -> dict:
    """The task entry reading its hub dataset from `hub_cache` (`source.local_copy`)."""
    spec = copy.deepcopy(config["tasks"][task])
    source = spec.get("source") or {}
    if config.get("hub_cache") and source.get("type") == "hf" and not Path(source["path"]).exists():
        source["local_copy"] = str(
            dataset_dir(config["hub_cache"], source["path"], source.get("name"))
        )
    return spec


def backbone_config(backbone: dict) -> dict | None:
    """A local backbone's config.json (None for hub ids: not knowable offline)."""
    config_file = Path(resolve_backbone(backbone["name"])) / "config.json"
    if not config_file.is_file():
        return None
    return json.loads(config_file.read_text())


def backbone_num_layers(backbone: dict) -> int | None:
    """Layer count read from a local config.json (None for hub ids: not knowable offline)."""
    found = backbone_config(backbone)
    return None if found is None else int(found["num_hidden_layers"])


def _check_costeff(method: dict, instances: dict, config: dict) -> None:
    """A COST-EFF method names a teacher method and a target width that fits its model."""
    if method["recipe"] != "costeff":
        for key in ("teacher", "slenderize"):
            if key in method:
                raise ConfigError(f"{key}: only for recipe costeff")
        return
    teacher = method.get("teacher")
    if teacher not in instances or instances[teacher]["recipe"] == "costeff":
        others = ", ".join(m for m, s in instances.items() if s["recipe"] != "costeff")
        raise ConfigError(
            f"teacher: {teacher!r} is not a trained method of this config (one of: {others})"
        )
    if "slenderize" not in method:
        raise ConfigError("slenderize: costeff needs its target width (slenderize.heads)")
    unknown = sorted(set(method["slenderize"].get("tasks", {})) - set(config["tasks"]))
    if unknown:
        raise ConfigError(f"slenderize.tasks: {unknown} are not tasks of this config")
    found = backbone_config(cached_backbone(config, method_backbone(config, instances[teacher])))
    if found is not None:
        check_slenderize(SimpleNamespace(**found), method["slenderize"])


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
    _check_costeff(method, method_instances(config), config)
    if method.get("pretrain") and method["recipe"] != "elasticbert":
        raise ConfigError("pretrain: elastic pre-training is only for recipe elasticbert")
    if method.get("backbone", {}).get("format") == "elasticbert" and method.get("pretrain"):
        raise ConfigError("pretrain: the backbone is already an ElasticBERT checkpoint")
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


def check_config(config: dict) -> None:
    """Raise ConfigError naming the first key that cannot work."""
    tasks = {name: resolve_task(name, spec) for name, spec in config["tasks"].items()}
    for name, task in tasks.items():
        check_metric(task.metric)
        _check_local_paths(name, task.source)
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
