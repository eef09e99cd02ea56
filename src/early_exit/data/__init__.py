"""The data stage: task registry, sources, splitting, and the prepared-data contract.

`prepare_task` writes `data/<task>/{train,dev,test}.jsonl` + `manifest.json`;
`load_manifest` / `load_split` read them back for training and prediction.
"""

from early_exit.data.prepare import prepare_task
from early_exit.data.prepared import MANIFEST_NAME, load_manifest, load_split, split_path
from early_exit.data.registry import (
    BUILTIN_TASKS,
    SPLITS,
    TaskSpec,
    builtin_task_names,
    resolve_task,
)

__all__ = [
    "BUILTIN_TASKS",
    "MANIFEST_NAME",
    "SPLITS",
    "TaskSpec",
    "builtin_task_names",
    "load_manifest",
    "load_split",
    "prepare_task",
    "resolve_task",
    "split_path",
]
