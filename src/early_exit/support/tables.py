"""The TSV tables the workflow writes: written atomically, read with a check of structure.

A table is small and rewritten by a cheap rule, so it carries no checksum; what a reader
checks instead: the file is there, is text that parses as a table, ends with the newline
every table written here ends with (a file cut short ends mid-line), has the columns the
reader needs and, unless an empty one is allowed, a row. Any failure is one DataError
naming the file, what is wrong and the rule that rewrites it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from early_exit.support.atomic import atomic_path
from early_exit.support.errors import DataError


def write_table(table: pd.DataFrame, path: str | Path, run_key: dict | None = None) -> None:
    """Write `table` as TSV atomically; `run_key` (e.g. task, method, seed) becomes its
    first columns, inserted in place."""
    for i, (key, value) in enumerate((run_key or {}).items()):
        table.insert(i, key, value)
    with atomic_path(Path(path)) as tmp:
        table.to_csv(tmp, sep="\t", index=False)


def read_table(
    path: str | Path,
    what: str,
    rerun: str,
    allow_empty: bool = False,
    columns: tuple[str, ...] | list[str] = (),
) -> pd.DataFrame:
    """One table (`what`, e.g. "sweep table"); `rerun` is what writes it, as the
    message names it ("rule sweep"). `columns` are those the caller needs. A table
    with a header and no rows is an error unless `allow_empty`."""
    path = Path(path)

    def wrong(problem: str) -> DataError:
        return DataError(f"{path}: {what} {problem} (rerun {rerun})")

    if not path.is_file():
        raise wrong("missing")
    try:
        raw = path.read_bytes()
        raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise wrong(f"unreadable ({err.__class__.__name__}: not UTF-8 text)") from None
    if not raw.strip():
        raise wrong("is an empty file")
    if not raw.endswith(b"\n"):
        raise wrong("is cut short (its last line has no newline)")
    try:
        frame = pd.read_csv(path, sep="\t")
    except (pd.errors.ParserError, ValueError) as err:
        first = str(err).strip().splitlines()[0]
        raise wrong(f"does not parse as a table ({first})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise wrong(f"lacks column(s) {', '.join(missing)}")
    if frame.empty and not allow_empty:
        raise wrong("has no rows")
    return frame


def read_tables(
    paths: list[str | Path], what: str, rerun: str, columns: tuple[str, ...] | list[str] = ()
) -> pd.DataFrame:
    """Several tables of one kind, concatenated."""
    if not paths:
        raise DataError(f"no {what}s given")
    frames = [read_table(p, what, rerun, columns=columns) for p in paths]
    return pd.concat(frames, ignore_index=True)
