"""Builtin tasks and the resolution of a task's config entry into one validated `TaskSpec`.

The workflow config is defaults-filled by a JSON schema, but this module applies the
same defaults itself (`.get`), so `prepare_task` behaves the same when called directly
from a notebook or a test with a hand-written dict.

A task has a `type`: `classification` (integer label ids into `label_names`, default
metric `accuracy`) or `regression` (one float label per example, e.g. STS-B similarity,
no `label_names`, default metric `pearson`). Metrics are checked against the type here,
where the task is named; whether a metric name exists at all is `metrics.py`'s business.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from early_exit.errors import ConfigError

SPLITS: tuple[str, ...] = ("train", "dev", "test")
TASK_TYPES: tuple[str, ...] = ("classification", "regression")
SOURCE_TYPES: tuple[str, ...] = ("bbc", "hf", "files")
FILE_FORMATS: tuple[str, ...] = ("tsv", "csv", "jsonl")

DEFAULT_METRIC = "accuracy"  # of a classification task
# The metrics that make sense for each task type: scoring a regression task with
# accuracy (or a classifier with pearson) gives a number, just a meaningless one, so the
# mismatch is caught when the config is read rather than after training. Kept here, not
# imported from `metrics.py`, so the data stage does not depend on scoring code.
METRICS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "macro_f1", "f1", "mcc", "acc_and_f1"),
    "regression": ("pearson", "spearman", "corr"),
}
DEFAULT_METRICS: dict[str, str] = {"classification": DEFAULT_METRIC, "regression": "pearson"}
DEFAULT_MAX_LENGTH = 128
DEFAULT_SPLIT: dict[str, float] = {"dev": 0.1, "test": 0.2}
DEFAULT_TEXT_FIELDS: list[str] = ["text"]
DEFAULT_LABEL_FIELD = "label"

# Both BBC tasks read the same files and deduplicate on the article text, so with the
# same seed and fractions they get the same document splits: headline-vs-article
# results are then comparable document by document.
BUILTIN_TASKS: dict[str, dict[str, Any]] = {
    "bbc-news": {
        "source": {"type": "bbc", "field": "article"},
        "max_length": 128,
        "split": dict(DEFAULT_SPLIT),
    },
    "bbc-headlines": {
        "source": {"type": "bbc", "field": "headline"},
        "max_length": 32,
        "split": dict(DEFAULT_SPLIT),
    },
}
# What a config entry for a builtin may change; anything else would make the task
# something other than what its name says.
BUILTIN_OVERRIDABLE: tuple[str, ...] = ("type", "metric", "max_length", "split", "max_examples")
BUILTIN_SOURCE_OVERRIDABLE: tuple[str, ...] = ("corpus_dir",)


@dataclass(frozen=True)
class TaskSpec:
    """A task entry with every default applied and every value checked."""

    name: str
    source: dict[str, Any]
    task_type: str = "classification"
    metric: str = DEFAULT_METRIC
    max_length: int = DEFAULT_MAX_LENGTH
    split: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SPLIT))
    max_examples: dict[str, int | None] = field(default_factory=dict)
    text_fields: list[str] = field(default_factory=lambda: list(DEFAULT_TEXT_FIELDS))
    label_field: str = DEFAULT_LABEL_FIELD
    label_names: list[str] | None = None
    builtin: bool = False


def builtin_task_names() -> list[str]:
    """Names usable in `tasks:` without a `source`."""
    return sorted(BUILTIN_TASKS)


def resolve_task(name: str, spec: dict[str, Any] | None) -> TaskSpec:
    """Merge a config entry with its builtin (if any), apply defaults and validate it.

    Raises ConfigError naming the task and the offending key.
    """
    spec = {} if spec is None else spec
    if not isinstance(spec, dict):
        raise ConfigError(f"task {name!r}: expected a mapping, got {type(spec).__name__}")
    if name in BUILTIN_TASKS:
        spec = _merge_builtin(name, spec)
        builtin = True
    elif spec.get("source") is None:
        raise ConfigError(
            f"task {name!r} is not a builtin task and has no `source`; "
            f"builtin tasks: {', '.join(builtin_task_names())}"
        )
    else:
        builtin = False

    task_type = _check_task_type(name, spec.get("type"), builtin)
    return TaskSpec(
        name=name,
        source=_check_source(name, spec["source"]),
        task_type=task_type,
        metric=_check_metric(name, task_type, spec.get("metric")),
        max_length=_check_max_length(name, spec.get("max_length", DEFAULT_MAX_LENGTH)),
        split=_check_split(name, spec.get("split")),
        max_examples=_check_max_examples(name, spec.get("max_examples")),
        text_fields=_check_text_fields(name, spec.get("text_fields", DEFAULT_TEXT_FIELDS)),
        label_field=_check_name(name, "label_field", spec.get("label_field", DEFAULT_LABEL_FIELD)),
        label_names=_check_label_names(name, task_type, spec.get("label_names")),
        builtin=builtin,
    )


def _merge_builtin(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(BUILTIN_TASKS[name])
    # A schema may fill generic defaults into every task; those are harmless when equal
    # to the defaults, so only a real attempt to change the data is rejected.
    harmless = {"text_fields": DEFAULT_TEXT_FIELDS, "label_field": DEFAULT_LABEL_FIELD}
    for key, value in spec.items():
        if key == "source":
            merged["source"].update(_builtin_source_override(name, merged["source"], value))
        elif key in BUILTIN_OVERRIDABLE:
            merged[key] = value
        elif value is None or harmless.get(key) == value:
            continue
        elif key in ("text_fields", "label_field", "label_names"):
            raise ConfigError(
                f"task {name!r} is builtin; `{key}` cannot be changed (it may override: "
                f"{', '.join(BUILTIN_OVERRIDABLE)}, source.corpus_dir)"
            )
        else:
            merged[key] = value  # unrelated keys (e.g. training options) pass through
    return merged


def _builtin_source_override(name: str, builtin: dict[str, Any], value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"task {name!r}: `source` must be a mapping")
    override = {}
    for key, val in value.items():
        if key in BUILTIN_SOURCE_OVERRIDABLE:
            if val is not None:
                override[key] = val
        elif builtin.get(key) != val:
            raise ConfigError(
                f"task {name!r} is builtin; only source.corpus_dir may be overridden, "
                f"not source.{key} (define a new task name for a different source)"
            )
    return override


def _check_source(name: str, source: Any) -> dict[str, Any]:
    if not isinstance(source, dict):
        raise ConfigError(f"task {name!r}: `source` must be a mapping")
    source = copy.deepcopy(source)
    kind = source.get("type")
    if kind not in SOURCE_TYPES:
        raise ConfigError(
            f"task {name!r}: source.type {kind!r} is not one of {', '.join(SOURCE_TYPES)}"
        )
    if kind == "bbc":
        if source.get("field", "article") not in ("article", "headline"):
            raise ConfigError(f"task {name!r}: source.field must be 'article' or 'headline'")
        source.setdefault("field", "article")
        if source.get("corpus_dir") is not None:
            source["corpus_dir"] = str(Path(source["corpus_dir"]))
    elif kind == "hf":
        _check_name(name, "source.path", source.get("path"))
        splits = source.get("splits") or {}
        if not isinstance(splits, dict):
            raise ConfigError(f"task {name!r}: source.splits must be a mapping")
        unknown = set(splits) - set(SPLITS)
        if unknown:
            raise ConfigError(f"task {name!r}: unknown source.splits keys {sorted(unknown)}")
        source["splits"] = {s: splits.get(s) for s in SPLITS}
        if source["splits"]["train"] is None:
            source["splits"]["train"] = "train"
        source.setdefault("name", None)
        source.setdefault("revision", None)
    else:
        fmt = source.get("format")
        if fmt not in FILE_FORMATS:
            raise ConfigError(
                f"task {name!r}: source.format {fmt!r} is not one of {', '.join(FILE_FORMATS)}"
            )
        _check_name(name, "source.train", source.get("train"))
        for split in SPLITS:
            source.setdefault(split, None)
    return source


def _check_task_type(name: str, value: Any, builtin: bool) -> str:
    """The task type; a builtin task keeps its own (its labels are classes by construction)."""
    task_type = "classification" if value is None else value
    if task_type not in TASK_TYPES:
        supported = ", ".join(TASK_TYPES)
        raise ConfigError(
            f"task {name!r}: type {task_type!r} is not supported (supported: {supported})"
        )
    if builtin and task_type != "classification":
        raise ConfigError(
            f"task {name!r} is builtin and a classification task; type {task_type!r} is not "
            "supported for it (define a new task name with its own source instead)"
        )
    return task_type


def _check_metric(name: str, task_type: str, value: Any) -> str:
    """The metric (default by task type), rejecting one meant for the other task type.

    Names that belong to neither type are left to `metrics.check_metric`, which knows
    every metric the package can compute.
    """
    if value is None:
        return DEFAULT_METRICS[task_type]
    if not isinstance(value, str) or not value:
        raise ConfigError(f"task {name!r}: `metric` must be a non-empty string")
    for other, metrics in METRICS_BY_TYPE.items():
        if other != task_type and value in metrics:
            allowed = ", ".join(METRICS_BY_TYPE[task_type])
            raise ConfigError(
                f"task {name!r}: metric {value!r} is for {other} tasks, but the task has "
                f"type {task_type}; allowed metrics for {task_type}: {allowed}"
            )
    return value


def _check_max_length(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"task {name!r}: `max_length` must be a positive integer, got {value!r}")
    return value


def _check_split(name: str, value: Any) -> dict[str, float]:
    value = {} if value is None else value
    if not isinstance(value, dict) or set(value) - {"dev", "test"}:
        raise ConfigError(f"task {name!r}: `split` must be a mapping with keys dev and test")
    split = {key: value.get(key, DEFAULT_SPLIT[key]) for key in ("dev", "test")}
    for key, frac in split.items():
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 < frac < 1:
            raise ConfigError(f"task {name!r}: split.{key} must be a fraction in (0, 1)")
    if split["dev"] + split["test"] >= 1:
        raise ConfigError(f"task {name!r}: split.dev + split.test must be below 1")
    return {key: float(frac) for key, frac in split.items()}


def _check_max_examples(name: str, value: Any) -> dict[str, int | None]:
    value = {} if value is None else value
    if not isinstance(value, dict) or set(value) - set(SPLITS):
        raise ConfigError(f"task {name!r}: `max_examples` must be a mapping with keys {SPLITS}")
    result: dict[str, int | None] = {}
    for split in SPLITS:
        n = value.get(split)
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ConfigError(f"task {name!r}: max_examples.{split} must be a positive integer")
        result[split] = n
    return result


def _check_text_fields(name: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or len(value) not in (1, 2):
        raise ConfigError(f"task {name!r}: `text_fields` must list one or two field names")
    return [_check_name(name, "text_fields", v) for v in value]


def _check_label_names(name: str, task_type: str, value: Any) -> list[str] | None:
    if value is None:
        return None
    if task_type == "regression":
        # Silently ignoring them would hide a config that was meant for a classifier.
        raise ConfigError(
            f"task {name!r}: `label_names` is only for classification tasks; a regression "
            "task has one float label and no classes (remove label_names)"
        )
    if not isinstance(value, list) or not value:
        raise ConfigError(f"task {name!r}: `label_names` must be a non-empty list")
    names = [_check_name(name, "label_names", str(v)) for v in value]
    if len(set(names)) != len(names):
        raise ConfigError(f"task {name!r}: `label_names` contains duplicates")
    return names


def _check_name(name: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"task {name!r}: `{key}` must be a non-empty string, got {value!r}")
    return value
