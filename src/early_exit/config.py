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

import jsonschema
import yaml

from early_exit.backbone import resolve_backbone
from early_exit.data.registry import resolve_task
from early_exit.errors import ConfigError
from early_exit.metrics import check_metric
from early_exit.model import resolve_exit_layers
from early_exit.policies import get_policy
from early_exit.recipes import get_recipe


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
    """Global training settings with the method's overrides on top."""
    merged = copy.deepcopy(config["training"])
    merged.update(config["methods"][method].get("training", {}))
    return merged


def backbone_num_layers(backbone: dict) -> int | None:
    """Layer count read from a local config.json (None for hub ids: not knowable offline)."""
    source = Path(resolve_backbone(backbone["name"]))
    config_file = source / "config.json"
    if not config_file.is_file():
        return None
    return int(json.loads(config_file.read_text())["num_hidden_layers"])


# Source keys that name local paths (an hf `path` may be a hub id, so it is not checked).
LOCAL_PATH_KEYS = {"bbc": ["corpus_dir"], "files": ["train", "dev", "test"], "hf": []}


def _check_local_paths(name: str, source: dict) -> None:
    for key in LOCAL_PATH_KEYS[source["type"]]:
        value = source.get(key)
        if value is not None and not Path(value).exists():
            raise ConfigError(
                f"tasks.{name}.source.{key}: path {value!r} does not exist "
                f"(relative paths are resolved against {Path.cwd()})"
            )


def check_config(config: dict) -> None:
    """Raise ConfigError naming the first key that cannot work."""
    num_layers = backbone_num_layers(config["backbone"])
    for name, spec in config["tasks"].items():
        task = resolve_task(name, spec)
        check_metric(task.metric)
        _check_local_paths(name, task.source)
    for name, method in config["methods"].items():
        try:
            get_recipe(method["recipe"])
            if num_layers is not None:
                resolve_exit_layers(method.get("exit_layers", "all"), num_layers)
        except ConfigError as err:
            raise ConfigError(f"methods.{name}.{err}") from None
    for policy in config.get("sweep", {}).get("policies", {}):
        get_policy(policy)
