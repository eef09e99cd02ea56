"""What every source reader returns, and the step from read rows to labelled examples.

A reader returns the splits its source provides (at least `train`, plus any extra
`test_<suffix>` evaluation split the task declares); `prepare` carves a missing `dev` or
`test` out of train.

The `files` and `hf` readers hand their rows to `encode`. Labels become class ids
(classification) or finite floats (regression: a number, or a string that parses as one,
as in a TSV file). A label that is not a number, NaN or infinite is reported with its
`file:line` (or dataset row), since one such value would turn every loss and correlation
downstream into NaN. Example ids are `<split>-<row>`, the row of the source split (for
files: the data row, blank lines not counted), so an id still points at its source row
when `source.skip_unlabeled` has dropped rows before it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from early_exit.data.registry import TaskSpec
from early_exit.data.splitting import normalise_whitespace
from early_exit.support.errors import DataError


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
    """What a source reader returns: its splits' examples and what the manifest records."""

    splits: dict[str, list[Example]]  # the roles the source provides; always has "train"
    label_names: list[str]  # empty for a regression task
    source: dict[str, Any]  # the resolved source, recorded in the manifest
    decoding_fallbacks: list[str] = field(default_factory=list)
    # rows dropped for label -1 per split read from the source (source.skip_unlabeled only)
    dropped_unlabeled: dict[str, int] | None = None


@dataclass(frozen=True)
class RawRow:
    """One row as a reader found it (texts and label unchecked), for `encode`."""

    where: str  # "file:line" or "dataset split row i", for error messages
    texts: list[str]
    label: Any
    index: int | None = None  # row of the source split (default: position in the list)


def encode(
    task: TaskSpec,
    raw: dict[str, list[RawRow]],
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


def _check_texts(where: str, names: list[str], values: list[Any]) -> None:
    for name, value in zip(names, values, strict=True):
        if not isinstance(value, str):
            raise DataError(f"{where}: field {name!r} must be a string, got {value!r}")
        if not value.strip():
            raise DataError(f"{where}: empty text in field {name!r}")


def _build_examples(
    raw: dict[str, list[RawRow]], label_of: Callable[[RawRow], int | float]
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


def _float_label(row: RawRow) -> float:
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


def _names_from_values(rows: list[RawRow]) -> tuple[list[str], dict[Any, int]]:
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


def _check_one_kind(rows: list[RawRow]) -> None:
    """Inferred classes must be all integers or all names: a TSV whose labels are 0/1
    with one row saying `positive` would otherwise become a three-class task and fail
    later in splitting without a line number. The rarer kind's first row is named."""
    by_kind: dict[bool, list[RawRow]] = {}
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


def _label_id(row: RawRow, label_names: list[str], by_value: dict[Any, int]) -> int:
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
