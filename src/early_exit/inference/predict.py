"""One inference pass that stores every exit's logits (the workflow's predict stage).

Every exit policy (entropy, patience, confidence, oracle) depends only on the
per-exit logits, so each evaluation split is run once with all exits and the
threshold sweeps work from the stored arrays: no re-inference per threshold.

The file's layout is described in `early_exit.exits.stored`, which writes it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from early_exit.data.prepared import eval_splits, load_manifest, load_split
from early_exit.exits.stored import write_exit_outputs
from early_exit.modeling.checkpoint import load_model_dir
from early_exit.modeling.flops import evaluate, exit_flops_polynomial
from early_exit.modeling.pruning import num_parameters
from early_exit.support.errors import DataError
from early_exit.training.batching import Collator, encode, inference_batches
from early_exit.training.runtime import pick_device


@torch.no_grad()
def all_exit_outputs(
    model, collate: Collator, lengths: np.ndarray, batch_size: int, device: torch.device
) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits of every exit for every example, in example order: [N, E, C], and the
    exit gate's scores [N, E] (None for a model without a gate)."""
    model.eval().to(device)
    logits = scores = None
    batches = inference_batches(collate, lengths, batch_size, device)
    n_batches = -(-len(lengths) // batch_size)
    for idx, batch in tqdm(batches, total=n_batches, desc="predict", mininterval=5):
        out = model(**batch)
        z = out.logits.float().cpu().numpy()
        if logits is None:
            logits = np.empty((len(lengths),) + z.shape[1:], dtype=np.float32)
            if out.exit_scores is not None:
                scores = np.empty((len(lengths), z.shape[1]), dtype=np.float32)
        logits[idx] = z
        if scores is not None:
            scores[idx] = out.exit_scores.float().cpu().numpy()
    return logits, scores


def all_exit_logits(
    model, collate: Collator, lengths: np.ndarray, batch_size: int, device: torch.device
) -> np.ndarray:
    """Logits of every exit for every example, in example order: [N, E, C]."""
    return all_exit_outputs(model, collate, lengths, batch_size, device)[0]


def transfer_labels(
    model_labels: list, data_labels: list, label_map: dict | None, key: str
) -> np.ndarray:
    """Index of each of the data's labels among the model's labels (cross-task prediction).

    `label_map` maps a data label name to a model label name where they differ; `key`
    names the config entry holding it, for the error message."""
    mapped = [str((label_map or {}).get(str(name), name)) for name in data_labels]
    model_names = [str(name) for name in model_labels]
    missing = [m for m in mapped if m not in model_names]
    if missing:
        raise DataError(
            f"{key}: labels {missing} of the predicted task are not labels of the model "
            f"({model_names}); map each of {list(data_labels)} to one of them"
        )
    return np.array([model_names.index(m) for m in mapped], dtype=np.int64)


def predict(
    model_dir: Path,
    data_dir: Path,
    out_path: Path,
    splits: list[str] | None = None,
    batch_size: int = 64,
    device: str = "auto",
    threads: int | None = None,
    label_map: dict | None = None,
    label_key: str | None = None,
) -> dict:
    """Run `splits` (default: the task's evaluation splits, dev and every test split)
    through the model once and write `out_path` atomically.

    Cross-task prediction (a model answering another task with the same labels, as in
    SplitEE) passes `label_key`, the config entry naming the pair: the data's labels are
    then stored as indices into the model's labels, renamed by `label_map` first."""
    if threads:
        torch.set_num_threads(threads)
    model, tokenizer, meta = load_model_dir(model_dir)
    manifest = load_manifest(data_dir)
    relabel = None
    if label_key is not None:
        relabel = transfer_labels(
            meta["label_names"], manifest["label_names"], label_map, label_key
        )
    elif manifest["label_names"] != meta["label_names"]:
        raise DataError(
            f"{model_dir} was trained with labels {meta['label_names']}, "
            f"but {data_dir} has {manifest['label_names']}: rerun rule train"
        )
    arrays = {
        "exit_layers": np.array(model.exit_layers, dtype=np.int64),
        "num_layers": np.array(model.num_layers, dtype=np.int64),
        "label_names": np.array(meta["label_names"], dtype=str),
        "task_type": np.array(manifest.get("task_type", "classification")),
        "metric": np.array(manifest.get("metric", "accuracy")),
        "num_parameters": np.array(num_parameters(model), dtype=np.int64),
    }
    splits = splits or eval_splits(manifest)
    arrays["splits"] = np.array(splits)
    dev = pick_device(device)
    flops = exit_flops_polynomial(model)  # [E, 3]: FLOPs = c0 + c1 s + c2 s^2
    for split in splits:
        data = encode(load_split(data_dir, split), tokenizer, manifest["max_length"])
        logits, scores = all_exit_outputs(
            model, Collator(tokenizer, data), data.lengths, batch_size, dev
        )
        arrays[f"{split}_logits"] = logits
        if scores is not None:
            arrays[f"{split}_scores"] = scores
        arrays[f"{split}_labels"] = data.labels if relabel is None else relabel[data.labels]
        arrays[f"{split}_lengths"] = data.lengths
        arrays[f"{split}_ids"] = np.array(data.ids, dtype=str)
        arrays[f"{split}_flops"] = evaluate(flops, data.lengths)
    write_exit_outputs(out_path, arrays)
    return {k: v.shape for k, v in arrays.items()}
