"""Fine-tune one multi-exit model on one prepared task (the workflow's train stage)."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from early_exit.backbone import load_pretrained
from early_exit.batching import Collator, encode
from early_exit.checkpoint import save_model_dir
from early_exit.data.prepared import load_manifest, load_split
from early_exit.model import ExitConfig, MultiExitModel
from early_exit.recipes import get_recipe
from early_exit.runtime import pick_device, seed_everything
from early_exit.train import discard_state, fit

log = logging.getLogger(__name__)


def build_model(backbone: dict, method: dict, num_labels: int):
    """Pre-trained encoder + fresh exit heads as the method's recipe wants them."""
    recipe = get_recipe(method["recipe"])
    encoder, tokenizer = load_pretrained(
        backbone["name"], backbone.get("revision"), backbone.get("trust_remote_code", False)
    )
    cfg = ExitConfig(
        num_labels=num_labels,
        exit_layers=method.get("exit_layers", "all"),
        pooling=backbone.get("pooling", "cls"),
        head=method.get("head") or recipe.HEAD,
        extra={"recipe": method["recipe"]},
    )
    return MultiExitModel(encoder, cfg), tokenizer, recipe


def finetune(
    data_dir: Path,
    out_dir: Path,
    state_dir: Path,
    backbone: dict,
    method: dict,
    training: dict,
    seed: int,
    device: str = "auto",
    threads: int | None = None,
    on_step=None,
) -> dict:
    """Train and write `out_dir` (a self-contained model directory) atomically."""
    manifest = load_manifest(data_dir)
    train_examples = load_split(data_dir, "train")
    seed_everything(seed, threads)
    model, tokenizer, recipe = build_model(backbone, method, len(manifest["label_names"]))
    data = encode(train_examples, tokenizer, manifest["max_length"])
    dev = pick_device(device)
    log.info(
        "training %s on %s (%d examples) on %s", method["recipe"], manifest["task"], len(data), dev
    )
    run_id = {
        "backbone": backbone,
        "method": method,
        "training": training,
        "seed": seed,
        "train_sha256": manifest["splits"]["train"]["sha256"],
    }
    progress = fit(
        model,
        data,
        Collator(tokenizer, data),
        recipe.stages(training),
        training,
        seed,
        dev,
        Path(state_dir),
        on_step=on_step,
        fingerprint=hashlib.sha256(json.dumps(run_id, sort_keys=True).encode()).hexdigest(),
    )
    meta = {
        "task": manifest["task"],
        "label_names": manifest["label_names"],
        "max_length": manifest["max_length"],
        "backbone": backbone,
        "method": method,
        "training": training,
        "seed": seed,
        "progress": progress,
    }
    save_model_dir(Path(out_dir), model.cpu(), tokenizer, meta)
    discard_state(Path(state_dir))
    return meta
