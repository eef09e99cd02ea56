"""The `files` source: a task's splits from local JSON Lines, TSV or CSV files.

Files are parsed with `csv`/`json` line by line so a broken row is reported as
`file:line`, which a dataframe reader would not tell you. The manifest records each
file's resolved path and sha256.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from early_exit.data.registry import TaskSpec
from early_exit.data.sources.examples import RawRow, SourceData, encode
from early_exit.support.atomic import sha256_file
from early_exit.support.errors import DataError


def load_files(task: TaskSpec) -> SourceData:
    """The examples of `task`: one file per split, `source.<split>` (a null one is skipped)."""
    src = task.source
    raw: dict[str, list[RawRow]] = {}
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
        raw[role] = [RawRow(where, values[:-1], values[-1]) for where, values in rows]
        resolved[role] = str(path.resolve())
        resolved["sha256"][role] = sha256_file(path)
    resolved.update(text_fields=task.text_fields, label_field=task.label_field)
    return encode(task, raw, task.label_names, resolved)


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
    (regression) also floats; whether a value is a valid number is checked in `encode`.
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
