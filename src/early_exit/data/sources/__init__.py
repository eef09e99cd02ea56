"""Turning a task's `source` into labelled examples: one reader per source type.

`load_source` hands a task to the reader `READERS` holds for its `source.type`: `bbc`
(the BBC News corpus, `bbc.py`), `hf` (a Hugging Face dataset, `hf.py`) or `files`
(local JSON Lines, TSV or CSV files, `files.py`). Every reader returns a `SourceData` of
`Example`s (`examples.py`, which also turns the rows the `hf` and `files` readers read
into examples).

A new source type is a module with a reader `TaskSpec -> SourceData` and one line in
`READERS`. The config check names the type and the keys it reads (`registry.SOURCE_TYPES`,
`registry.SOURCE_KEYS`); a test keeps `READERS` and `SOURCE_TYPES` the same.
"""

from __future__ import annotations

from collections.abc import Callable

from early_exit.data.registry import TaskSpec
from early_exit.data.sources.bbc import load_bbc
from early_exit.data.sources.examples import Example, SourceData
from early_exit.data.sources.files import load_files
from early_exit.data.sources.hf import load_hf
from early_exit.support.errors import ConfigError

__all__ = ["READERS", "Example", "SourceData", "SourceReader", "load_source"]

SourceReader = Callable[[TaskSpec], SourceData]

# One reader per source type, in the order of registry.SOURCE_TYPES.
READERS: dict[str, SourceReader] = {"bbc": load_bbc, "hf": load_hf, "files": load_files}


def load_source(task: TaskSpec) -> SourceData:
    """Read the examples of `task` from its source."""
    kind = task.source.get("type")
    if kind not in READERS:  # `resolve_task` refuses it first, with the same message
        raise ConfigError(
            f"task {task.name!r}: source.type {kind!r} is not one of {', '.join(READERS)}"
        )
    return READERS[kind](task)
