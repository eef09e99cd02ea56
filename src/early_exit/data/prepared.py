"""Reading prepared splits back, with a checksum so edited or truncated data is never used.

Layout of `data/<task>/` (written by `prepare.prepare_task`): `train.jsonl`,
`dev.jsonl`, `test.jsonl` (one `{"id", "text", ["text_pair",] "label"}` object per
line) and `manifest.json`, which is written last: its presence means the task is
complete, and it records each split's sha256.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from early_exit.atomic import sha256_file
from early_exit.data.registry import SPLITS
from early_exit.errors import DataError

MANIFEST_NAME = "manifest.json"
RERUN_HINT = "rerun the data stage to prepare it again"


def split_path(data_dir: str | Path, split: str) -> Path:
    """Where split `split` of a prepared task lives."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    return Path(data_dir) / f"{split}.jsonl"


def load_manifest(data_dir: str | Path) -> dict[str, Any]:
    """The manifest of a prepared task; DataError if it is missing or not a valid manifest."""
    path = Path(data_dir) / MANIFEST_NAME
    if not path.is_file():
        raise DataError(
            f"{path} not found: the task is not prepared (or was interrupted); {RERUN_HINT}"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is not valid JSON ({err}); {RERUN_HINT}") from err
    splits = manifest.get("splits") if isinstance(manifest, dict) else None
    if (
        not isinstance(splits, dict)
        or any(not isinstance(splits.get(s), dict) or "sha256" not in splits[s] for s in SPLITS)
        or not isinstance(manifest.get("label_names"), list)
    ):
        raise DataError(f"{path} is not a prepared-data manifest; {RERUN_HINT}")
    return manifest


def load_split(data_dir: str | Path, split: str) -> list[dict[str, Any]]:
    """Records of one prepared split, after checking the file against the manifest's sha256."""
    manifest = load_manifest(data_dir)
    path = split_path(data_dir, split)
    if not path.is_file():
        raise DataError(f"{path} not found although the manifest lists it; {RERUN_HINT}")
    expected = manifest["splits"][split]["sha256"]
    if sha256_file(path) != expected:
        raise DataError(
            f"{path} does not match the sha256 in its manifest (edited or corrupted); {RERUN_HINT}"
        )
    records: list[dict[str, Any]] = []
    with path.open(encoding="utf-8", newline="\n") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{number}: invalid JSON ({err.msg}); {RERUN_HINT}") from err
            if not isinstance(record, dict) or not {"id", "text", "label"} <= record.keys():
                raise DataError(f"{path}:{number}: expected an object with id, text and label")
            records.append(record)
    return records
