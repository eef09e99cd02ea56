"""Hub models and datasets a config uses, and the local copies (`hub_cache`) jobs read."""

from __future__ import annotations

import copy
from pathlib import Path

from early_exit.modeling.backbone_source import is_hub_id
from early_exit.recipes.configured_methods import method_backbone, method_instances
from early_exit.support.download import cache_name, dataset_dir


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


def cached_task(config: dict, task: str) -> dict:
    """The task entry reading its hub dataset from `hub_cache` (`source.local_copy`)."""
    spec = copy.deepcopy(config["tasks"][task])
    source = spec.get("source") or {}
    if config.get("hub_cache") and source.get("type") == "hf" and not Path(source["path"]).exists():
        source["local_copy"] = str(
            dataset_dir(config["hub_cache"], source["path"], source.get("name"))
        )
    return spec
