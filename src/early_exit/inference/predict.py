"""One inference pass that stores every exit's logits (the workflow's predict stage).

Every exit policy (entropy, patience, confidence, oracle) depends only on the
per-exit logits, so each evaluation split is run once with all exits and the
threshold sweeps work from the stored arrays: no re-inference per threshold.

The file's layout is described in `early_exit.inference.stored`, which writes it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from early_exit.data.prepared import eval_splits, load_manifest, load_split
from early_exit.errors import DataError
from early_exit.inference.stored import write_exit_outputs
from early_exit.modeling.checkpoint import load_model_dir
from early_exit.modeling.flops import evaluate, exit_flops_polynomial
from early_exit.modeling.pruning import num_parameters
from early_exit.training.batching import Collator, encode, sorted_batches
from early_exit.training.runtime import pick_device


@torch.no_grad()
def all_exit_logits(
    model, collate: Collator, lengths: np.ndarray, batch_size: int, device: torch.device
) -> np.ndarray:
    """Logits of every exit for every example, in example order: [N, E, C]."""
    model.eval().to(device)
    out = None
    for idx in tqdm(sorted_batches(lengths, batch_size), desc="predict", mininterval=5):
        batch = {k: v.to(device) for k, v in collate(idx).items() if k != "labels"}
        logits = model(**batch).logits.float().cpu().numpy()
        if out is None:
            out = np.empty((len(lengths),) + logits.shape[1:], dtype=np.float32)
        out[idx] = logits
    return out


def predict(
    model_dir: Path,
    data_dir: Path,
    out_path: Path,
    splits: list[str] | None = None,
    batch_size: int = 64,
    device: str = "auto",
    threads: int | None = None,
) -> dict:
    """Run `splits` (default: the task's evaluation splits, dev and every test split)
    through the model once and write `out_path` atomically."""
    if threads:
        torch.set_num_threads(threads)
    model, tokenizer, meta = load_model_dir(model_dir)
    manifest = load_manifest(data_dir)
    if manifest["label_names"] != meta["label_names"]:
        raise DataError(
            f"{model_dir} was trained with labels {meta['label_names']}, "
            f"but {data_dir} has {manifest['label_names']}: rerun training"
        )
    arrays = {
        "exit_layers": np.array(model.exit_layers, dtype=np.int64),
        "num_layers": np.array(model.num_layers, dtype=np.int64),
        "label_names": np.array(manifest["label_names"], dtype=str),
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
        arrays[f"{split}_logits"] = all_exit_logits(
            model, Collator(tokenizer, data), data.lengths, batch_size, dev
        )
        arrays[f"{split}_labels"] = data.labels
        arrays[f"{split}_lengths"] = data.lengths
        arrays[f"{split}_ids"] = np.array(data.ids, dtype=str)
        arrays[f"{split}_flops"] = evaluate(flops, data.lengths)
    write_exit_outputs(out_path, arrays)
    return {k: v.shape for k, v in arrays.items()}
