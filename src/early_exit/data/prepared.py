"""Reading prepared splits back, with a checksum so edited or truncated data is never used.

Layout of `data/<task>/` (written by `prepare.prepare_task`): `train.jsonl`,
`dev.jsonl`, `test.jsonl`, one `test_<suffix>.jsonl` per extra evaluation split the
task declares (e.g. `test_mismatched.jsonl`) (one `{"id", "text", ["text_pair",]
"label"}` object per line) and `manifest.json`, which is written last: its presence
means the task is complete, and it records each split's sha256.

`label` is an integer class id for a classification task and a JSON float (e.g. 3.8)
for a regression task. The manifest holds:

- `task`, `task_type` (`classification` or `regression`), `metric`, `max_length`, `seed`;
- `text_fields`: `["text"]` or `["text", "text_pair"]`, the keys of the records;
- `label_names`: the class names in id order; empty for regression (no classes: the
  model has one output);
- `splits.<split>`: for train, dev, test and every extra split: `size`, `sha256`, and
  `label_counts` (`{name: count}`, classification) or `label_stats` (`{"mean", "std",
  "min", "max"}` of the labels, regression; std is the population std);
- `eval_splits`: the splits to predict and evaluate on, in order: `dev`, `test`, then
  the extra `test_<suffix>` ones in config order (`["dev", "test"]` when the manifest
  predates the key; `eval_splits()` applies that default). Read the order from here:
  the manifest is written with sorted keys, so `splits` comes back alphabetical;
- `source` (the resolved source, with file checksums; for a Hugging Face source read
  from a saved copy, its absolute `local_copy` directory), `dropped_duplicates`,
  `decoding_fallbacks`, `early_exit_version`;
- `dropped_unlabeled` (only with `source.skip_unlabeled`): `{split: rows dropped for
  label -1}` for each split read from the source (a carved split has none of its own).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from early_exit.data.registry import BASE_EVAL_SPLITS, SPLITS, TASK_TYPES, is_split_name
from early_exit.support.atomic import sha256_file
from early_exit.support.errors import DataError

MANIFEST_NAME = "manifest.json"
RERUN_HINT = "rerun rule prepare_data to prepare it again"


def split_path(data_dir: str | Path, split: str) -> Path:
    """Where split `split` of a prepared task lives."""
    if not is_split_name(split):
        raise ValueError(
            f"unknown split {split!r}; expected one of {SPLITS} or test_<suffix> "
            "(lowercase letters, digits, underscores)"
        )
    return Path(data_dir) / f"{split}.jsonl"


def eval_splits(manifest: dict[str, Any]) -> list[str]:
    """The evaluation splits of a prepared task (`dev`, `test`, then any extra ones)."""
    return list(manifest.get("eval_splits", BASE_EVAL_SPLITS))


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
    evaluated = manifest.get("eval_splits", BASE_EVAL_SPLITS) if isinstance(splits, dict) else ()
    if (
        not isinstance(splits, dict)
        or not isinstance(evaluated, (list, tuple))
        or list(evaluated[:2]) != list(BASE_EVAL_SPLITS)
        or any(not isinstance(s, str) or not is_split_name(s) for s in evaluated)
        or any(
            not isinstance(splits.get(s), dict) or "sha256" not in splits[s]
            for s in ("train", *evaluated)
        )
        or not isinstance(manifest.get("label_names"), list)
        or manifest.get("task_type", "classification") not in TASK_TYPES
    ):
        raise DataError(f"{path} is not a prepared-data manifest; {RERUN_HINT}")
    return manifest


def load_split(data_dir: str | Path, split: str) -> list[dict[str, Any]]:
    """Records of one prepared split, after checking the file against the manifest's sha256.

    Labels of a regression task are returned as floats (JSON would give an int for a
    label written as `4`), so callers can build a float tensor without looking.
    """
    manifest = load_manifest(data_dir)
    regression = manifest.get("task_type") == "regression"
    path = split_path(data_dir, split)
    if split not in manifest["splits"]:
        raise DataError(
            f"{Path(data_dir) / MANIFEST_NAME} lists no split {split!r} (splits: "
            f"{', '.join(['train', *eval_splits(manifest)])}); if the task's source now "
            f"declares it, {RERUN_HINT}"
        )
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
            if regression:
                record["label"] = _float_label(record["label"], f"{path}:{number}")
            records.append(record)
    return records


def _float_label(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DataError(f"{where}: regression label {value!r} is not a finite number; {RERUN_HINT}")
    return float(value)
