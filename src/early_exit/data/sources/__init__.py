"""Turning a task's `source` into labelled examples (moved here from `data/sources.py`)."""

from early_exit.data.sources.examples import Example, SourceData, load_source

__all__ = ["Example", "SourceData", "load_source"]
