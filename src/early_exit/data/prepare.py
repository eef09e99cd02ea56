"""The data stage: read a task's source, deduplicate, split, and write `data/<task>/`.

Writes `train`, `dev`, `test` and any extra `test_<suffix>` evaluation split the task
declares (`TaskSpec.eval_splits`), one `<split>.jsonl` each, then `manifest.json`.

Outputs are written one file at a time through `atomic.write_text`, the manifest last
and any old manifest removed first: a run that dies midway leaves no manifest, so
neither a rerun nor `load_split` can take half-written data for complete data.
The manifest's fields are described in `prepared` (the module that reads them back).
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from pathlib import Path
from typing import Any

from early_exit import __version__
from early_exit.data.prepared import MANIFEST_NAME, split_path
from early_exit.data.registry import TaskSpec, resolve_task
from early_exit.data.sources import Example, SourceData, load_source
from early_exit.data.splitting import carve_splits, deduplicate, stratified_subsample
from early_exit.support.atomic import sha256_file, write_json, write_text
from early_exit.support.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def prepare_task(name: str, spec: dict[str, Any] | None, out_dir: str | Path, seed: int) -> dict:
    """Prepare task `name` (config entry `spec`) into `out_dir`; return the manifest.

    The same inputs and seed give byte-identical split files.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"data_seed must be an integer, got {seed!r}")
    task = resolve_task(name, spec)
    data = load_source(task)
    splits, dropped = build_splits(task, data, seed)
    return write_prepared(task, data, splits, dropped, Path(out_dir), seed)


def build_splits(
    task: TaskSpec, data: SourceData, seed: int
) -> tuple[dict[str, list[Example]], int]:
    """Return (examples per split, number of duplicates dropped).

    Splits the source provides are used as they are (benchmark splits stay comparable);
    a missing dev or test split is carved from the deduplicated train pool, with
    `task.split` giving their fractions of that pool. Extra `test_<suffix>` splits always
    come from the source. Regression labels are stratified on quantile bins.
    """
    continuous = task.task_type == "regression"
    splits = dict(data.splits)
    carve = {role: task.split[role] for role in ("dev", "test") if role not in splits}
    dropped = 0
    if carve:
        pool = splits["train"]
        dedup = deduplicate([e.dedup_key for e in pool], [e.label for e in pool])
        dropped = dedup.dropped
        if dedup.conflicting:
            log.warning(
                "task %s: dropped all %d copies of texts whose duplicates disagree on the label",
                task.name,
                dedup.conflicting,
            )
        log.info("task %s: dropped %d duplicate examples before splitting", task.name, dropped)
        pool = [pool[i] for i in dedup.keep]
        parts = carve_splits([e.label for e in pool], carve, seed, continuous)
        splits.update({role: [pool[i] for i in idx] for role, idx in parts.items()})
    missing = [role for role in task.splits if role not in splits]
    if missing:  # only dev and test can be carved; the registry declares no other
        raise DataError(f"task {task.name!r}: the source gave no {', '.join(missing)} split")
    for role in task.splits:
        limit = task.max_examples.get(role)
        if limit is not None:
            labels = [e.label for e in splits[role]]
            picked = stratified_subsample(labels, limit, seed, continuous)
            splits[role] = [splits[role][i] for i in picked]
        if not splits[role]:
            raise DataError(f"task {task.name!r}: the {role} split is empty")
    return splits, dropped


def write_prepared(
    task: TaskSpec,
    data: SourceData,
    splits: dict[str, list[Example]],
    dropped: int,
    out_dir: Path,
    seed: int,
) -> dict[str, Any]:
    """Write the split files, then the manifest; return the manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    # A manifest from an earlier run must not vouch for the files we are about to replace.
    (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
    pairs = any(e.text_pair is not None for examples in splits.values() for e in examples)
    split_info: dict[str, Any] = {}
    for role in task.splits:
        path = split_path(out_dir, role)
        lines = (json.dumps(e.to_json(), ensure_ascii=False) + "\n" for e in splits[role])
        write_text(path, "".join(lines))
        split_info[role] = {"size": len(splits[role]), "sha256": sha256_file(path)}
        labels = [e.label for e in splits[role]]
        if task.task_type == "regression":
            split_info[role]["label_stats"] = label_stats(labels)
        else:
            counts = Counter(labels)
            split_info[role]["label_counts"] = {
                n: counts.get(i, 0) for i, n in enumerate(data.label_names)
            }
    manifest = {
        "task": task.name,
        "task_type": task.task_type,
        "metric": task.metric,
        "max_length": task.max_length,
        "text_fields": ["text", "text_pair"] if pairs else ["text"],
        "label_names": data.label_names,
        "source": data.source,
        "seed": seed,
        "splits": split_info,
        "eval_splits": list(task.eval_splits),
        "dropped_duplicates": dropped,
        "decoding_fallbacks": data.decoding_fallbacks,
        "early_exit_version": __version__,
    }
    if data.dropped_unlabeled is not None:
        manifest["dropped_unlabeled"] = data.dropped_unlabeled
    write_json(out_dir / MANIFEST_NAME, manifest)
    log.info(
        "task %s: wrote %s to %s",
        task.name,
        ", ".join(f"{r} {split_info[r]['size']}" for r in task.splits),
        out_dir,
    )
    return manifest


def label_stats(labels: list[float]) -> dict[str, float]:
    """Mean, population std, min and max of a split's regression labels.

    What `label_counts` is for a classifier: enough to see at a glance that the splits
    look alike, and the std is the scale a regression error should be read against.
    `math.fsum` makes the values exact sums, so manifests do not depend on summation order.
    """
    if not labels:
        raise ValueError("label_stats of an empty split")
    n = len(labels)
    mean = math.fsum(labels) / n
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in labels) / n)
    return {"mean": mean, "std": std, "min": min(labels), "max": max(labels)}
