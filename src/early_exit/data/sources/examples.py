"""Turning a task's `source` into labelled examples: BBC corpus, Hugging Face datasets, files.

Each source returns the splits it provides (at least `train`, plus any extra
`test_<suffix>` evaluation split the task declares); `prepare` carves a missing `dev` or
`test` out of train. Local files are parsed with `csv`/`json` line by line so a
broken row is reported as `file:line`, which a dataframe reader would not tell you.

Labels become class ids (classification) or finite floats (regression: a number, or a
string that parses as one, as in a TSV file). A label that is not a number, NaN or
infinite is reported with the same `file:line` (or dataset row), since one such value
would turn every loss and correlation downstream into NaN.

Hugging Face splits are read with `datasets.load_dataset`, or with `source.local_copy`
from a `DatasetDict` saved by the download step (`datasets.load_from_disk`), which needs
no network; both give the same examples. Example ids are `<split>-<row>`, the row of the
source split (for files: the data row, blank lines not counted), so an id still points at
its source row when `source.skip_unlabeled` has dropped rows before it.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from early_exit.data.registry import TaskSpec
from early_exit.data.sources.bbc import read_bbc_corpus
from early_exit.data.splitting import normalise_whitespace
from early_exit.support.atomic import sha256_file
from early_exit.support.errors import ConfigError, DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Example:
    """One labelled example; `dedup_key` decides which examples count as duplicates.

    `label` is a class id for classification, a float for regression.
    """

    id: str
    text: str
    label: int | float
    text_pair: str | None = None
    dedup_key: Hashable = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The prepared-split record: id, text, [text_pair], label."""
        record: dict[str, Any] = {"id": self.id, "text": self.text}
        if self.text_pair is not None:
            record["text_pair"] = self.text_pair
        record["label"] = self.label
        return record


@dataclass(frozen=True)
class SourceData:
    splits: dict[str, list[Example]]  # the roles the source provides; always has "train"
    label_names: list[str]  # empty for a regression task
    source: dict[str, Any]  # the resolved source, recorded in the manifest
    decoding_fallbacks: list[str] = field(default_factory=list)
    # rows dropped for label -1 per split read from the source (source.skip_unlabeled only)
    dropped_unlabeled: dict[str, int] | None = None


@dataclass(frozen=True)
class _RawRow:
    where: str  # "file:line" or "dataset split row i", for error messages
    texts: list[str]
    label: Any
    index: int | None = None  # row of the source split (default: position in the list)


def load_source(task: TaskSpec) -> SourceData:
    """Read the examples of `task` from its source."""
    kind = task.source["type"]
    if kind == "bbc":
        return _load_bbc(task)
    if kind == "hf":
        return _load_hf(task)
    return _load_files(task)


def _load_bbc(task: TaskSpec) -> SourceData:
    corpus = read_bbc_corpus(task.source.get("corpus_dir"))
    text_of = task.source.get("field", "article")
    # Both BBC tasks deduplicate on the article, so they share one document pool.
    examples = [
        Example(id=doc.id, text=getattr(doc, text_of), label=doc.label, dedup_key=doc.article)
        for doc in corpus.documents
    ]
    source = {"type": "bbc", "field": text_of, "corpus_dir": str(corpus.corpus_dir.resolve())}
    return SourceData({"train": examples}, corpus.label_names, source, corpus.decoding_fallbacks)


def _load_hf(task: TaskSpec) -> SourceData:
    import datasets  # slow to import; only HF tasks pay for it

    src = task.source
    desc = src["path"] + (f"/{src['name']}" if src.get("name") else "")
    load_split = _hf_split_reader(task, desc)
    skip_unlabeled = bool(src.get("skip_unlabeled"))
    raw: dict[str, list[_RawRow]] = {}
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
            _RawRow(f"{where} row {i}", [col[i] for col in columns], labels[i], index=i)
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
    data = _encode(task, raw, names, source)
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
    keep = [i for i, v in enumerate(labels) if v != -1]
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
    unlabelled = sum(1 for v in labels if v == -1)
    hidden = unlabelled == len(labels) if task.task_type == "regression" else unlabelled > 0
    if labels and hidden:
        some = task.task_type == "classification" and unlabelled < len(labels)
        hint = " (or, if only some rows lack a label, set source.skip_unlabeled: true)"
        raise DataError(
            f"{where} has no labels ({unlabelled} of {len(labels)} rows have label -1, as "
            f"in GLUE's hidden test sets); map source.splits.{role} to a labelled split, "
            f"e.g. `test: validation`{hint if some else ''}"
        )


def _load_files(task: TaskSpec) -> SourceData:
    src = task.source
    raw: dict[str, list[_RawRow]] = {}
    resolved: dict[str, Any] = {"type": "files", "format": src["format"], "sha256": {}}
    for role in task.splits:
        if src.get(role) is None:
            resolved[role] = None
            continue
        path = Path(src[role])
        if not path.is_file():
            raise DataError(
                f"task {task.name!r}: source.{role} file not found: {path} (relative paths "
                f"are resolved against the current working directory, {Path.cwd()})"
            )
        fields = [*task.text_fields, task.label_field]
        if src["format"] == "jsonl":
            rows = _read_jsonl(path, fields, numeric=task.task_type == "regression")
        else:
            rows = _read_table(path, fields, tsv=src["format"] == "tsv")
        raw[role] = [_RawRow(where, values[:-1], values[-1]) for where, values in rows]
        resolved[role] = str(path.resolve())
        resolved["sha256"][role] = sha256_file(path)
    resolved.update(text_fields=task.text_fields, label_field=task.label_field)
    return _encode(task, raw, task.label_names, resolved)


def _decode_utf8(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 ({err.reason})") from err


def _read_table(path: Path, fields: list[str], tsv: bool) -> list[tuple[str, list[Any]]]:
    """Rows of a CSV/TSV file with a header row, as (`file:line`, values of `fields`)."""
    dialect: dict[str, Any] = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if tsv else {}
    reader = csv.reader(io.StringIO(_decode_utf8(path), newline=""), **dialect)
    header = next(reader, None)
    if not header:
        raise DataError(f"{path}:1: a header row naming the columns is required")
    missing = [f for f in fields if f not in header]
    if missing:
        raise DataError(f"{path}:1: header has no column(s) {missing}; columns: {header}")
    positions = [header.index(f) for f in fields]
    rows: list[tuple[str, list[Any]]] = []
    line = reader.line_num
    try:
        for row in reader:
            where, line = f"{path}:{line + 1}", reader.line_num
            if not row:
                continue  # blank line
            if len(row) != len(header):
                raise DataError(
                    f"{where}: expected {len(header)} columns like the header, found {len(row)}"
                )
            values = [row[p] for p in positions]
            values[-1] = values[-1].strip()
            if not values[-1]:
                raise DataError(f"{where}: empty label in column {fields[-1]!r}")
            rows.append((where, values))
    except csv.Error as err:
        raise DataError(f"{path}:{reader.line_num}: {err}") from err
    return rows


def _read_jsonl(
    path: Path, fields: list[str], numeric: bool = False
) -> list[tuple[str, list[Any]]]:
    """Records of a JSON Lines file, as (`file:line`, values of `fields`).

    Labels must be strings or integers (class names or ids), or with `numeric`
    (regression) also floats; whether a value is a valid number is checked in `_encode`.
    """
    kinds: tuple[type, ...] = (str, int, float) if numeric else (str, int)
    expected = "a number" if numeric else "a string or an integer"
    rows: list[tuple[str, list[Any]]] = []
    # split on "\n" only: str.splitlines would also break inside strings at U+2028 etc.
    for number, line in enumerate(_decode_utf8(path).split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{where}: invalid JSON ({err.msg})") from err
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
        missing = [f for f in fields if record.get(f) is None]
        if missing:
            raise DataError(f"{where}: missing field(s) {missing}")
        values = [record[f] for f in fields]
        label = values[-1].strip() if isinstance(values[-1], str) else values[-1]
        if isinstance(label, bool) or not isinstance(label, kinds) or label == "":
            raise DataError(f"{where}: label must be {expected}, got {label!r}")
        rows.append((where, [*values[:-1], label]))
    return rows


def _check_texts(where: str, names: list[str], values: list[Any]) -> None:
    for name, value in zip(names, values, strict=True):
        if not isinstance(value, str):
            raise DataError(f"{where}: field {name!r} must be a string, got {value!r}")
        if not value.strip():
            raise DataError(f"{where}: empty text in field {name!r}")


def _encode(
    task: TaskSpec,
    raw: dict[str, list[_RawRow]],
    label_names: list[str] | None,
    source: dict[str, Any],
) -> SourceData:
    """Check texts and labels and build examples with ids `<split>-<row index>`.

    Classification: string labels are names; integer labels are ids into `label_names`
    when it is given (ClassLabel, or the config), else they are named by their sorted
    unique values. Regression: labels become finite floats and there are no names.
    """
    rows = [row for role_rows in raw.values() for row in role_rows]
    for row in rows:
        _check_texts(row.where, source["text_fields"], row.texts)
        if row.label is None:
            raise DataError(f"{row.where}: missing label")
    if task.task_type == "regression":
        return SourceData(_build_examples(raw, _float_label), [], source)
    if label_names is None:
        label_names, by_value = _names_from_values(rows)
    else:
        by_value = {name: i for i, name in enumerate(label_names)}
    names = list(label_names)
    splits = _build_examples(raw, lambda row: _label_id(row, names, by_value))
    return SourceData(splits, names, source)


def _build_examples(
    raw: dict[str, list[_RawRow]], label_of: Callable[[_RawRow], int | float]
) -> dict[str, list[Example]]:
    splits: dict[str, list[Example]] = {}
    for role, role_rows in raw.items():
        examples = []
        for index, row in enumerate(role_rows):
            pair = row.texts[1] if len(row.texts) > 1 else None
            key = tuple(normalise_whitespace(t) for t in row.texts)
            number = index if row.index is None else row.index
            examples.append(Example(f"{role}-{number}", row.texts[0], label_of(row), pair, key))
        splits[role] = examples
    return splits


def _float_label(row: _RawRow) -> float:
    """A regression label as a finite float; strings (TSV/CSV cells) are parsed."""
    value = row.label
    not_a_number = DataError(f"{row.where}: label {value!r} is not a number")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise not_a_number
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (ValueError, OverflowError):
        raise not_a_number from None
    if not math.isfinite(number):
        raise DataError(f"{row.where}: label {value!r} is not a finite number")
    return number


def _names_from_values(rows: list[_RawRow]) -> tuple[list[str], dict[Any, int]]:
    if not rows:
        raise DataError("the source has no examples")
    first_type = _label_kind(rows[0].label)
    for row in rows:
        if _label_kind(row.label) != first_type:
            raise DataError(
                f"{row.where}: label {row.label!r} mixes strings and integers with "
                f"{rows[0].label!r} ({rows[0].where}); set label_names"
            )
    _check_one_kind(rows)
    values = sorted({row.label for row in rows})
    return [str(v) for v in values], {v: i for i, v in enumerate(values)}


def _check_one_kind(rows: list[_RawRow]) -> None:
    """Inferred classes must be all integers or all names: a TSV whose labels are 0/1
    with one row saying `positive` would otherwise become a three-class task and fail
    later in splitting without a line number. The rarer kind's first row is named."""
    by_kind: dict[bool, list[_RawRow]] = {}
    for row in rows:
        by_kind.setdefault(_is_integer(row.label), []).append(row)
    if len(by_kind) < 2:
        return
    stray, usual = sorted(by_kind.values(), key=len)
    kind = "integers" if _is_integer(usual[0].label) else "names"
    raise DataError(
        f"{stray[0].where}: label {stray[0].label!r} differs in kind from the others "
        f"({len(usual)} of {len(rows)} labels are {kind}, e.g. {usual[0].label!r} at "
        f"{usual[0].where}); it would become a class of its own: fix the row, or set "
        "label_names"
    )


def _is_integer(value: Any) -> bool:
    """An integer label, or a string spelling one (TSV/CSV cells are strings)."""
    if isinstance(value, str):
        return value.strip().lstrip("+-").isdigit()
    return _label_kind(value) is int


def _label_kind(value: Any) -> type:
    return int if isinstance(value, int) and not isinstance(value, bool) else str


def _label_id(row: _RawRow, label_names: list[str], by_value: dict[Any, int]) -> int:
    """A label name, or an integer (or a TSV/CSV cell spelling one) used as an id."""
    value = row.label
    if value in by_value:
        return by_value[value]
    if _is_integer(value) and 0 <= int(value) < len(label_names):
        return int(value)
    raise DataError(
        f"{row.where}: label {value!r} is not one of label_names {label_names} "
        f"(nor an id 0..{len(label_names) - 1})"
    )
