"""The TSV tables the workflow writes: written atomically, read naming the file when one
is missing or empty."""

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


def read_table(path: str | Path, what: str, rerun: str, allow_empty: bool = False) -> pd.DataFrame:
    """One table (`what`, e.g. "sweep table"); `rerun` says what writes it. A table with
    a header and no rows is an error unless `allow_empty`."""
    if not Path(path).is_file():
        raise DataError(f"{path}: {what} missing (rerun {rerun})")
    frame = pd.read_csv(path, sep="\t")
    if frame.empty and not allow_empty:
        raise DataError(f"{path}: {what} is empty")
    return frame


def read_tables(paths: list[str | Path], what: str, rerun: str) -> pd.DataFrame:
    """Several tables of one kind, concatenated."""
    if not paths:
        raise DataError(f"no {what}s given")
    return pd.concat([read_table(p, what, rerun) for p in paths], ignore_index=True)
