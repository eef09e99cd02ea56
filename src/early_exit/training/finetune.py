"""Fine-tune one multi-exit model on one prepared task (the workflow's train stage)."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch

from early_exit.data.prepared import load_manifest, load_split
from early_exit.modeling.backbone import load_backbone
from early_exit.modeling.checkpoint import save_model_dir
from early_exit.modeling.model import ExitConfig, MultiExitModel
from early_exit.recipes import RecipeContext, get_recipe
from early_exit.training.batching import Collator, encode
from early_exit.training.hardware import describe
from early_exit.training.loop import discard_state, fit
from early_exit.training.runtime import pick_device, seed_everything

log = logging.getLogger(__name__)


def build_model(backbone: dict, method: dict, num_labels: int):
    """Pre-trained encoder + fresh exit heads shaped as the method's recipe wants them."""
    recipe = get_recipe(method["recipe"])
    encoder, tokenizer, pooler_init = load_backbone(backbone)
    cfg = ExitConfig(
        num_labels=num_labels,
        exit_layers=method.get("exit_layers", recipe.default_exits),
        pooling=backbone.get("pooling", "cls"),
        head=method.get("head") or recipe.head,
        gradient_equilibrium=recipe.gradient_equilibrium,
        exit_gate=recipe.exit_gate,
        extra={"recipe": method["recipe"]},
    )
    model = MultiExitModel(encoder, cfg, pooler_init)
    recipe.check(model.exit_layers, model.num_layers)
    return model, tokenizer, recipe


def run_fingerprint(*parts) -> str:
    """Identifies a training run, so a stale resume state is never continued."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


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
    task_type = manifest.get("task_type", "classification")
    num_labels = 1 if task_type == "regression" else len(manifest["label_names"])
    seed_everything(seed, threads)
    model, tokenizer, recipe = build_model(backbone, method, num_labels)
    data = encode(train_examples, tokenizer, manifest["max_length"])
    ctx = RecipeContext(task_type, tuple(model.exit_layers))
    dev = pick_device(device)
    log.info(
        "training %s on %s (%d examples, exits %s) on %s",
        recipe.name,
        manifest["task"],
        len(data),
        model.exit_layers,
        dev,
    )
    label_dtype = torch.float32 if task_type == "regression" else torch.long
    collate = Collator(tokenizer, data, label_dtype)
    fingerprint = run_fingerprint(
        backbone, method, training, seed, manifest["splits"]["train"]["sha256"]
    )
    progress = fit(
        model,
        data,
        collate,
        recipe.stages(training, ctx),
        training,
        seed,
        dev,
        Path(state_dir),
        on_step=on_step,
        fingerprint=fingerprint,
    )
    meta = {
        "task": manifest["task"],
        "task_type": task_type,
        "label_names": manifest["label_names"],
        "max_length": manifest["max_length"],
        "backbone": backbone,
        "method": method,
        "training": training,
        "seed": seed,
        "progress": progress,
        "hardware": describe(str(dev)),  # the deck's setup slide reports it
    }
    save_model_dir(Path(out_dir), model.cpu(), tokenizer, meta)
    discard_state(Path(state_dir))
    return meta
