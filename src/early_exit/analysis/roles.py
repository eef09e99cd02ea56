"""What each method is in the results: its criterion, whether it is a single-exit
baseline, and its place in the ELUE score (a point of a static curve, or scored
against which backbone's curve; `early_exit.analysis.elue`).

`method_info` computes it from the config when the workflow loads; the notebooks and
the deck receive it as JSON and read it back with `method_roles`.
"""

from __future__ import annotations

import json

from early_exit.modeling.backbone_source import backbone_num_layers, cached_backbone
from early_exit.recipes import get_recipe
from early_exit.recipes.configured_methods import method_backbone, method_instances, trained_alike
from early_exit.support.errors import ConfigError


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
    """Whether `name` (a single-exit run on every layer: `finetune`) is the full-depth
    point of its backbone's static curve: the static baselines of that backbone stop
    short of the last layer and are trained with the same settings, so fine-tuning all L
    layers with one head on layer L is exactly the missing static-L model, trained once
    instead of twice."""
    methods = method_instances(config)
    spec = methods[name]
    recipe = get_recipe(spec["recipe"])
    if not recipe.static or recipe.reference_curve or spec.get("exit_layers"):
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
    criterion, how it is trained (`trained_by`), whether it is a single-exit baseline
    (`static`), its backbone, whether it is a point of its backbone's reference curve
    (`curve`), the backbone whose curve it is scored against (`reference`; the declared
    one, or with `analysis.elue_per_backbone` its own backbone when that has a static
    curve), whether it is its backbone's full model (`full_model`), and the config entry it
    was expanded from (`family`) with its `exit_layers`."""
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
            "trained_by": recipe.trained_by,
            "criterion": spec.get("criterion", recipe.criterion),
            "static": recipe.static,
            "backbone": backbone,
            "curve": curve,
            "reference": scored,
            # a single exit on the last layer (plain fine-tuning): the full model that
            # the intervals' `vs_finetune` compares methods of its backbone with
            "full_model": recipe.static
            and not recipe.reference_curve
            and not spec.get("exit_layers"),
            # the config entry it was expanded from (`static` with `layers: [1, 2, 4]`
            # gives static-1, static-2, static-4) and its exit layers: figures that would
            # show a family's members as one repeated marker label them by k
            "family": spec["family"],
            "exit_layers": spec.get("exit_layers"),
        }
    return info


def method_roles(methods_json: str) -> tuple[dict, dict[str, str], list[str]]:
    """From the workflow's method description (JSON: method -> recipe, criterion, static):
    all of it, each method's criterion, and the static baselines."""
    info = json.loads(methods_json)
    criteria = {m: i["criterion"] for m, i in info.items() if i["criterion"]}
    static = [m for m, i in info.items() if i["static"]]
    return info, criteria, static


def finetune_of(info: dict[str, dict], method: str) -> str | None:
    """The plain fine-tuning run of the method's backbone (a single exit on the last
    layer): what `vs fine-tuning` compares the method with."""
    backbone = info.get(method, {}).get("backbone")
    for name, i in sorted(info.items()):
        if i.get("full_model") and i.get("backbone") == backbone:
            return name
    return None
