"""Builtin tasks and the resolution of a task's config entry into one validated `TaskSpec`.

The workflow config is defaults-filled by a JSON schema, but this module applies the
same defaults itself (`.get`), so `prepare_task` behaves the same when called directly
from a notebook or a test with a hand-written dict.

A task has a `type`: `classification` (integer label ids into `label_names`, default
metric `accuracy`) or `regression` (one float label per example, e.g. STS-B similarity,
no `label_names`, default metric `pearson`). Metrics are checked against the type here,
where the task is named; whether a metric name exists at all is `metrics.py`'s business.

Evaluation splits: every task has `dev` and `test` (read from the source, or carved from
train when the source lacks them). A task may declare more test sets, named
`test_<suffix>` (lowercase letters, digits, underscores; e.g. `test_mismatched` for
MNLI's mismatched dev set): for `hf` as keys of `source.splits`, for `files` as keys of
`source` next to `train`/`dev`/`test`. They are always read from the source (never
carved from train); one that is not given does not exist. `TaskSpec.eval_splits` lists
`dev`, `test`, then the extra ones in the order the config gives them.

Hugging Face sources take two more options: `skip_unlabeled: true` (classification
only) drops rows whose label is -1 instead of refusing them, and `local_copy: <dir>`
reads every split from a `DatasetDict` saved with `save_to_disk` (by the download step)
instead of the hub. Neither is checked against the disk here: the config is checked
before the download step has run.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from early_exit.support.errors import ConfigError

SPLITS: tuple[str, ...] = ("train", "dev", "test")  # the splits every task has
BASE_EVAL_SPLITS: tuple[str, ...] = ("dev", "test")
# Extra evaluation splits (read from the source like `test`): `test_<suffix>`.
EXTRA_SPLIT_PATTERN = re.compile(r"test_[a-z0-9_]+")
EXTRA_SPLIT_HINT = "test_<suffix> (lowercase letters, digits, underscores) for an extra test set"
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
    # dev, test, then the extra `test_<suffix>` splits the source declares (config order)
    eval_splits: tuple[str, ...] = BASE_EVAL_SPLITS

    @property
    def splits(self) -> tuple[str, ...]:
        """Every split of the prepared task: train, then the evaluation splits."""
        return ("train", *self.eval_splits)


def is_extra_split(split: str) -> bool:
    """Whether `split` is a valid name for an extra evaluation split (`test_<suffix>`)."""
    return isinstance(split, str) and EXTRA_SPLIT_PATTERN.fullmatch(split) is not None


def is_split_name(split: str) -> bool:
    """Whether `split` can name a prepared split: train, dev, test or `test_<suffix>`."""
    return split in SPLITS or is_extra_split(split)


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
    source = _check_source(name, spec["source"])
    if source.get("skip_unlabeled") and task_type != "classification":
        # A regression score of -1 is a value, not a missing label.
        raise ConfigError(
            f"task {name!r}: source.skip_unlabeled is only for classification tasks (label "
            f"-1 means 'no gold label' only for class ids); the task has type {task_type}"
        )
    eval_splits = (*BASE_EVAL_SPLITS, *_extra_splits(source))
    return TaskSpec(
        name=name,
        source=source,
        task_type=task_type,
        metric=_check_metric(name, task_type, spec.get("metric")),
        max_length=_check_max_length(name, spec.get("max_length", DEFAULT_MAX_LENGTH)),
        split=_check_split(name, spec.get("split")),
        max_examples=_check_max_examples(name, spec.get("max_examples"), eval_splits),
        text_fields=_check_text_fields(name, spec.get("text_fields", DEFAULT_TEXT_FIELDS)),
        label_field=_check_name(name, "label_field", spec.get("label_field", DEFAULT_LABEL_FIELD)),
        label_names=_check_label_names(name, task_type, spec.get("label_names")),
        builtin=builtin,
        eval_splits=eval_splits,
    )


def _extra_splits(source: dict[str, Any]) -> list[str]:
    """The extra evaluation splits a checked source declares, in config order."""
    if source["type"] == "hf":
        return [key for key in source["splits"] if is_extra_split(key)]
    if source["type"] == "files":
        return [key for key in source if is_extra_split(key)]
    return []


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


# The keys each source type reads; anything else is a typo or belongs to another type.
SOURCE_KEYS: dict[str, tuple[str, ...]] = {
    "bbc": ("type", "field", "corpus_dir"),
    "hf": ("type", "path", "name", "revision", "splits", "skip_unlabeled", "local_copy"),
    "files": ("type", "format", *SPLITS),
}


def _check_source(name: str, source: Any) -> dict[str, Any]:
    if not isinstance(source, dict):
        raise ConfigError(f"task {name!r}: `source` must be a mapping")
    source = copy.deepcopy(source)
    kind = source.get("type")
    if kind not in SOURCE_TYPES:
        raise ConfigError(
            f"task {name!r}: source.type {kind!r} is not one of {', '.join(SOURCE_TYPES)}"
        )
    _check_source_keys(name, kind, source)
    if kind == "bbc":
        if source.get("field", "article") not in ("article", "headline"):
            raise ConfigError(f"task {name!r}: source.field must be 'article' or 'headline'")
        source.setdefault("field", "article")
        if source.get("corpus_dir") is not None:
            source["corpus_dir"] = str(Path(source["corpus_dir"]))
    elif kind == "hf":
        _check_name(name, "source.path", source.get("path"))
        source["splits"] = _check_hf_splits(name, source.get("splits"))
        source.setdefault("name", None)
        source.setdefault("revision", None)
        skip = source.pop("skip_unlabeled", None)
        if skip is not None and not isinstance(skip, bool):
            raise ConfigError(
                f"task {name!r}: source.skip_unlabeled must be true or false, got {skip!r}"
            )
        if skip:  # recorded only when set, so other tasks' manifests do not change
            source["skip_unlabeled"] = True
        if source.get("local_copy") is None:
            source.pop("local_copy", None)
        else:
            copy_dir = _check_name(name, "source.local_copy", source["local_copy"])
            source["local_copy"] = str(Path(copy_dir))
    else:
        fmt = source.get("format")
        if fmt not in FILE_FORMATS:
            raise ConfigError(
                f"task {name!r}: source.format {fmt!r} is not one of {', '.join(FILE_FORMATS)}"
            )
        _check_name(name, "source.train", source.get("train"))
        for split in SPLITS:
            source.setdefault(split, None)
        for key in [k for k in source if is_extra_split(k)]:
            if source[key] is None:
                del source[key]  # an extra split that is not given does not exist
            else:
                _check_name(name, f"source.{key}", source[key])
    return source


def _check_source_keys(name: str, kind: str, source: dict[str, Any]) -> None:
    """Reject keys the source type does not read (a null value, e.g. a schema default, is
    harmless). A files source also takes `test_<suffix>` keys: extra evaluation splits."""
    allowed = SOURCE_KEYS[kind]
    for key, value in source.items():
        if key in allowed or value is None or (kind == "files" and is_extra_split(key)):
            continue
        hint = f", or {EXTRA_SPLIT_HINT}" if kind == "files" else ""
        if kind == "hf" and is_extra_split(key):
            hint = f"; an extra split goes under source.splits: {{{key}: <hub split name>}}"
        raise ConfigError(
            f"task {name!r}: unknown key source.{key} for a {kind} source "
            f"(allowed: {', '.join(allowed)}{hint})"
        )


def _check_hf_splits(name: str, splits: Any) -> dict[str, str | None]:
    """`source.splits` with train/dev/test always present (train defaults to `train`) and
    the extra `test_<suffix>` splits that are given, in config order."""
    splits = {} if splits is None else splits
    if not isinstance(splits, dict):
        raise ConfigError(f"task {name!r}: source.splits must be a mapping")
    unknown = [key for key in splits if not is_split_name(key)]
    if unknown:
        raise ConfigError(
            f"task {name!r}: unknown source.splits keys {sorted(map(str, unknown))} "
            f"(allowed: train, dev, test, or {EXTRA_SPLIT_HINT})"
        )
    result: dict[str, str | None] = {s: splits.get(s) for s in SPLITS}
    if result["train"] is None:
        result["train"] = "train"
    for key, value in splits.items():
        if value is not None:
            result[key] = _check_name(name, f"source.splits.{key}", value)
        elif is_extra_split(key):
            result.pop(key, None)  # an extra split that is not given does not exist
    return result


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


def _check_max_examples(
    name: str, value: Any, eval_splits: tuple[str, ...] = BASE_EVAL_SPLITS
) -> dict[str, int | None]:
    """Per-split example limits, with a key (None: no limit) for every split of the task."""
    value = {} if value is None else value
    splits = ("train", *eval_splits)
    if not isinstance(value, dict) or any(not is_split_name(key) for key in value):
        raise ConfigError(
            f"task {name!r}: `max_examples` must be a mapping with keys among "
            f"{', '.join(splits)} (the task's splits)"
        )
    for key in value:
        if key not in splits and value[key] is not None:
            raise ConfigError(
                f"task {name!r}: max_examples.{key} names a split the source does not declare "
                f"(the task's splits: {', '.join(splits)})"
            )
    result: dict[str, int | None] = {}
    for split in splits:
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
