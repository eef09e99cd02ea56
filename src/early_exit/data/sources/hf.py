"""The `hf` source: a task's splits from a Hugging Face dataset.

Splits are read with `datasets.load_dataset`, or with `source.local_copy` from a
`DatasetDict` saved by the download step (`datasets.load_from_disk`), which needs no
network; both give the same examples. `datasets` is imported where it is used, so a task
of another source type does not pay for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from early_exit.data.registry import TaskSpec
from early_exit.data.sources.examples import RawRow, SourceData, encode
from early_exit.support.errors import ConfigError, DataError

log = logging.getLogger(__name__)

# The label of a row without a gold label: GLUE's hidden test sets, SNLI's unannotated pairs.
NO_LABEL = -1


def load_hf(task: TaskSpec) -> SourceData:
    """The examples of `task`: each split `source.splits` maps, read from the dataset."""
    import datasets  # slow to import; only HF tasks pay for it

    src = task.source
    desc = src["path"] + (f"/{src['name']}" if src.get("name") else "")
    load_split = _hf_split_reader(task, desc)
    skip_unlabeled = bool(src.get("skip_unlabeled"))
    raw: dict[str, list[RawRow]] = {}
    dropped: dict[str, int] = {}
    class_names: list[str] | None = None
    for role in task.splits:
        split_name = src["splits"].get(role)
        if split_name is None:
            continue
        ds = load_split(role, split_name)
        where = f"Hugging Face dataset {desc!r} split {split_name!r}"
        missing = [f for f in [*task.text_fields, task.label_field] if f not in ds.column_names]
        if missing:
            raise DataError(f"{where} has no column(s) {missing}; columns: {ds.column_names}")
        feature = ds.features[task.label_field]
        labels = list(ds[task.label_field])
        if task.task_type == "regression":
            labels = _hf_regression_labels(task, where, feature, labels)
        elif isinstance(feature, datasets.ClassLabel):
            if class_names is not None and class_names != feature.names:
                raise DataError(f"{where}: label names {feature.names} differ from {class_names}")
            class_names = list(feature.names)
        rows = range(len(labels))
        if skip_unlabeled:
            rows, dropped[role] = _drop_unlabeled(task, where, role, labels)
        _check_hf_labelled(task, where, role, [labels[i] for i in rows])
        columns = [list(ds[f]) for f in task.text_fields]
        raw[role] = [
            RawRow(f"{where} row {i}", [col[i] for col in columns], labels[i], index=i)
            for i in rows
        ]
    if class_names is not None and task.label_names not in (None, class_names):
        raise ConfigError(
            f"task {task.name!r}: label_names {task.label_names} differ from the dataset's "
            f"ClassLabel names {class_names}; remove label_names"
        )
    names = class_names if class_names is not None else task.label_names
    source = {**src, "text_fields": task.text_fields, "label_field": task.label_field}
    if src.get("local_copy") is not None:
        source["local_copy"] = str(Path(src["local_copy"]).resolve())
    data = encode(task, raw, names, source)
    if skip_unlabeled:
        data = replace(data, dropped_unlabeled=dropped)
    return data


def _hf_split_reader(task: TaskSpec, desc: str) -> Callable[[str, str], Any]:
    """A function (role, split name) -> `datasets.Dataset`: from the hub (or a hub-like
    directory) with `load_dataset`, or from `source.local_copy` with `load_from_disk`."""
    import datasets

    src = task.source
    if src.get("local_copy") is None:

        def from_hub(role: str, split_name: str) -> Any:
            try:
                return datasets.load_dataset(
                    src["path"], src.get("name"), revision=src.get("revision"), split=split_name
                )
            except Exception as err:  # datasets raises many types; all mean "cannot load"
                raise DataError(
                    f"task {task.name!r}: cannot load Hugging Face dataset {desc!r} split "
                    f"{split_name!r} (source.splits.{role}): {type(err).__name__}: {err}"
                ) from err

        return from_hub

    copy_dir = Path(src["local_copy"])
    what = f"task {task.name!r}: the local copy {copy_dir} of Hugging Face dataset {desc}"
    if not copy_dir.is_dir():
        raise DataError(
            f"{what} is missing: run the download step first "
            "(`snakemake download --cores 1`, on a machine with internet)"
        )
    try:
        saved = datasets.load_from_disk(str(copy_dir))
    except Exception as err:  # not a saved dataset, or a damaged one
        raise DataError(
            f"{what} cannot be read ({type(err).__name__}: {err}); delete it and run the "
            "download step again"
        ) from err
    if not isinstance(saved, datasets.DatasetDict):
        raise DataError(
            f"{what} is a single {type(saved).__name__}, not a DatasetDict of splits; delete "
            "it and run the download step again"
        )

    def from_disk(role: str, split_name: str) -> Any:
        if split_name not in saved:
            note = ""
            if any(c in split_name for c in "[+"):
                note = " (split expressions such as train[:10%] do not work with local_copy)"
            raise DataError(
                f"{what} has no split {split_name!r} (source.splits.{role}){note}; "
                f"it has: {', '.join(saved)}"
            )
        return saved[split_name]

    return from_disk


def _drop_unlabeled(task: TaskSpec, where: str, role: str, labels: list) -> tuple[list[int], int]:
    """Rows of a classification split whose label is not -1, and how many were dropped.

    For `source.skip_unlabeled` (SNLI marks pairs without a gold label with -1). A split
    with no labelled row left is an error: it would be silently empty.
    """
    keep = [i for i, v in enumerate(labels) if v != NO_LABEL]
    dropped = len(labels) - len(keep)
    log.info(
        "task %s: dropped %d of %d rows of %s without a gold label (label -1; "
        "source.skip_unlabeled) from the %s split",
        task.name,
        dropped,
        len(labels),
        where,
        role,
    )
    if labels and not keep:
        raise DataError(
            f"{where} (source.splits.{role}) is empty after source.skip_unlabeled: all "
            f"{len(labels)} rows have label -1 (no labels, as in GLUE's hidden test sets); "
            "map it to a labelled split, e.g. `test: validation`"
        )
    return keep, dropped


def _hf_regression_labels(task: TaskSpec, where: str, feature: Any, labels: list) -> list:
    """Labels of a regression task's split, float32 values written as their short decimal.

    A ClassLabel column holds class ids, not quantities: regressing on them is a config
    mistake. Hub datasets store scores as float32 (STS-B's 3.8 is 3.799999952...); writing
    the shortest decimal that is the same float32 loses nothing, keeps the prepared files
    readable, and gives the values a TSV copy of the same data would give.
    """
    import datasets
    import numpy as np

    if isinstance(feature, datasets.ClassLabel):
        raise ConfigError(
            f"task {task.name!r} is a regression task but {where} column "
            f"{task.label_field!r} is a ClassLabel {feature.names}; use type: classification"
        )
    if isinstance(feature, datasets.Value) and feature.dtype in ("float16", "float32"):
        short = {"float16": np.float16, "float32": np.float32}[feature.dtype]
        return [v if v is None else float(str(short(v))) for v in labels]
    return labels


def _check_hf_labelled(task: TaskSpec, where: str, role: str, labels: list) -> None:
    """Refuse a hidden test split (label -1, as in GLUE) instead of training on -1s.

    For classification one -1 already means "no label". A regression score can be -1
    legitimately, so there only a split whose every label is -1 (STS-B test) counts.
    """
    unlabelled = sum(1 for v in labels if v == NO_LABEL)
    hidden = unlabelled == len(labels) if task.task_type == "regression" else unlabelled > 0
    if labels and hidden:
        some = task.task_type == "classification" and unlabelled < len(labels)
        hint = " (or, if only some rows lack a label, set source.skip_unlabeled: true)"
        raise DataError(
            f"{where} has no labels ({unlabelled} of {len(labels)} rows have label -1, as "
            f"in GLUE's hidden test sets); map source.splits.{role} to a labelled split, "
            f"e.g. `test: validation`{hint if some else ''}"
        )
