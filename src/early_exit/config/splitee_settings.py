"""The `splitee:` config section: checks beyond the schema, and the paths it asks for.

SplitEE streams a *target* task through a model trained on a *source* task with the
same labels (cross-task prediction, stored under the source run's directory:
`results/{source}/{method}/seed{seed}/transfer/{target}/exit_logits.npz`), then
simulates the bandit on it: `results/splitee/{source}/{target}/{method}/seed{seed}/`.
"""

from __future__ import annotations

from early_exit.data.registry import TaskSpec
from early_exit.exits.splitee import SplitEESettings
from early_exit.recipes import get_recipe
from early_exit.support.errors import ConfigError


def splitee_settings(config: dict) -> dict | None:
    """The section with the simulation's defaults (`exits.splitee.SplitEESettings`) applied;
    None when the config has none. The splitee job types it (`SplitEESettings.from_config`)."""
    section = config.get("splitee")
    return None if section is None else {**SplitEESettings.config_defaults(), **section}


def pair_alpha(settings: dict, pair: dict) -> list[float]:
    """The pair's confidence thresholds (its own, else the section's): always a list, since
    either may be one number or several (several draw the accuracy-cost trade-off)."""
    alpha = pair.get("alpha", settings["alpha"])
    return [float(a) for a in (alpha if isinstance(alpha, list) else [alpha])]


def _alphas(key: str, value) -> list[tuple[str, float]]:
    if isinstance(value, list):
        return [(f"{key}[{j}]", a) for j, a in enumerate(value)]
    return [(key, value)]


def _check_ranges(settings: dict) -> None:
    checks = [
        ("splitee.lambda", settings["lambda"], settings["lambda"] > 0, "> 0"),
        ("splitee.ucb_c", settings["ucb_c"], settings["ucb_c"] > 0, "> 0"),
        ("splitee.orders", settings["orders"], settings["orders"] >= 1, ">= 1"),
        (
            "splitee.lambda_depth",
            settings["lambda_depth"],
            isinstance(settings["lambda_depth"], int) and settings["lambda_depth"] >= 1,
            "an integer >= 1: the number of layers lambda is the per-layer cost of",
        ),
    ]
    checks += [
        (k, a, 0 < a <= 1, "in (0, 1]") for k, a in _alphas("splitee.alpha", settings["alpha"])
    ]
    checks += [
        (f"splitee.offload_costs[{i}]", o, o >= 0, ">= 0")
        for i, o in enumerate(settings["offload_costs"])
    ]
    checks += [
        (k, a, 0 < a <= 1, "in (0, 1]")
        for i, p in enumerate(settings["pairs"])
        if "alpha" in p
        for k, a in _alphas(f"splitee.pairs[{i}].alpha", p["alpha"])
    ]
    for key, value, ok, allowed in checks:
        if not ok:
            raise ConfigError(f"{key}: {value} is outside its range (must be {allowed})")


def known_labels(task: TaskSpec):
    """The task's label names when knowable before any data is read: configured names,
    or the BBC corpus's topics (every BBC task of one corpus shares them); else None."""
    if task.label_names is not None:
        return list(task.label_names)
    if task.source.get("type") == "bbc":
        return ("bbc corpus", task.source.get("corpus_dir"))
    return None


def _check_labels(key: str, source: TaskSpec, target: TaskSpec, label_map: dict) -> None:
    src, tgt = known_labels(source), known_labels(target)
    if src is None or tgt is None or isinstance(src, tuple) != isinstance(tgt, tuple):
        return  # known only once the data is prepared: the transfer job checks them
    if isinstance(src, tuple):
        if src != tgt:
            raise ConfigError(f"{key}: {source.name} and {target.name} read different corpora")
        return
    mapped = [str(label_map.get(str(n), n)) for n in tgt]
    missing = sorted(set(mapped) - set(map(str, src)))
    if missing:
        raise ConfigError(
            f"{key}.label_map: target labels {missing} are not labels of source "
            f"{source.name} ({src}); map each target label to a source label"
        )


def check_splitee(config: dict, tasks: dict[str, TaskSpec], methods: dict[str, dict]) -> None:
    """Raise ConfigError naming the first `splitee` key that cannot work."""
    settings = splitee_settings(config)
    if settings is None:
        return
    _check_ranges(settings)
    for j, method in enumerate(settings["methods"]):
        if method not in methods:
            raise ConfigError(
                f"splitee.methods[{j}]: unknown method {method!r}; configured: {', '.join(methods)}"
            )
        if get_recipe(methods[method]["recipe"]).static:
            raise ConfigError(f"splitee.methods[{j}]: {method} has one exit: no split to choose")
    for i, pair in enumerate(settings["pairs"]):
        key = f"splitee.pairs[{i}]"
        for role in ("source", "target"):
            if pair[role] not in tasks:
                raise ConfigError(
                    f"{key}.{role}: unknown task {pair[role]!r}; configured: {', '.join(tasks)}"
                )
        source, target = tasks[pair["source"]], tasks[pair["target"]]
        if pair["source"] == pair["target"]:
            raise ConfigError(f"{key}: source and target are the same task")
        for role, task in (("source", source), ("target", target)):
            if task.task_type != "classification":
                raise ConfigError(f"{key}.{role}: {task.name} is not a classification task")
        split = pair.get("split", "test")
        if split not in target.eval_splits:
            raise ConfigError(
                f"{key}.split: {split!r} is not an evaluation split of {target.name} "
                f"({', '.join(target.eval_splits)})"
            )
        _check_labels(key, source, target, pair.get("label_map") or {})


def transfer_params(config: dict, source: str, target: str) -> dict:
    """What the transfer prediction of (source -> target) needs: split, label map, key."""
    for i, pair in enumerate(splitee_settings(config)["pairs"]):
        if (pair["source"], pair["target"]) == (source, target):
            return {
                "split": pair.get("split", "test"),
                "label_map": pair.get("label_map") or {},
                "label_key": f"splitee.pairs[{i}]",
            }
    raise ConfigError(f"splitee.pairs: no pair {source} -> {target}")


def splitee_outputs(config: dict, seeds: list[int]) -> list[str]:
    """Every simulation table the config asks for."""
    settings = splitee_settings(config)
    if settings is None:
        return []
    return [
        f"results/splitee/{p['source']}/{p['target']}/{m}/seed{s}/splitee.tsv"
        for p in settings["pairs"]
        for m in settings["methods"]
        for s in seeds
    ]
