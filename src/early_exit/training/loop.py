"""The training loop: AdamW, linear warmup/decay, gradient clipping, resumable.

Readable top to bottom on purpose. A recipe supplies the stages (loss, what is
trainable, epochs, learning rate); everything else is shared. Batches are a pure
function of (seed, stage, epoch), and the training state (weights, optimizer,
scheduler, RNG) is saved every `checkpoint_every` steps, so a resumed run
continues exactly where the interrupted one stopped.
"""

from __future__ import annotations

import logging
import math
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from early_exit.modeling.checkpoint import (
    load_progress,
    restore_training_state,
    save_training_state,
)
from early_exit.recipes.stage import Stage
from early_exit.training.batching import Collator, Encoded, bucketed_batches

log = logging.getLogger(__name__)

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "LayerNorm.bias")


def make_optimizer(model: torch.nn.Module, stage: Stage, settings: dict, total_steps: int):
    """AdamW over the stage's trainable parameters (no decay on biases and LayerNorm)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        param.requires_grad_(stage.trainable(name))
        if param.requires_grad:
            (no_decay if any(k in name for k in NO_DECAY) else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": settings["weight_decay"]},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=stage.learning_rate, eps=1e-8)
    warmup = int(round(settings["warmup_ratio"] * total_steps))
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
    return optimizer, scheduler


def _autocast(device: torch.device, precision: str):
    enabled = precision == "bf16" and device.type == "cuda"
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def stage_loss(model, batch: dict, stage: Stage, step: int) -> torch.Tensor:
    """The stage's loss on one batch (already on the device)."""
    if stage.step_loss is not None:
        return stage.step_loss(model, batch, step)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    return stage.loss(model(**inputs).logits.float(), batch["labels"])


def train_step(
    model, batch, stage: Stage, optimizer, scheduler, settings, device, step: int = 0
) -> float:
    batch = {k: v.to(device) for k, v in batch.items()}
    with _autocast(device, settings.get("precision", "fp32")):
        loss = stage_loss(model, batch, stage, step)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    torch.nn.utils.clip_grad_norm_(params, settings["max_grad_norm"])
    optimizer.step()
    scheduler.step()
    return float(loss.detach())


def fit(
    model: torch.nn.Module,
    data: Encoded,
    collate: Collator,
    stages: list[Stage],
    settings: dict,
    seed: int,
    device: torch.device,
    state_dir: Path,
    on_step: Callable[[dict], None] | None = None,
    fingerprint: str = "",
) -> dict:
    """Train through all stages; resume from `state_dir` when it holds a saved state.

    `fingerprint` identifies the run (config, data, seed): a saved state with another
    fingerprint belongs to a different run and is discarded instead of resumed.
    Returns the progress record (per-epoch mean losses, steps, seconds).
    """
    progress = load_progress(state_dir)
    if progress is not None and progress.get("fingerprint") != fingerprint:
        log.warning("discarding %s: saved by a run with different settings or data", state_dir)
        discard_state(state_dir)
        progress = None
    progress = progress or {
        "fingerprint": fingerprint,
        "stage": 0,
        "epoch": 0,
        "batch": 0,
        "step": 0,
        "seconds": 0.0,
        "loss_sum": 0.0,
        "epoch_losses": [],
    }
    if progress["step"]:
        log.info("resuming from %s at step %d", state_dir, progress["step"])
    model.to(device)
    model.train()
    every = settings.get("checkpoint_every") or 0
    for s, stage in enumerate(stages):
        if s < progress["stage"]:
            continue
        n_batches = math.ceil(len(data) / settings["batch_size"])
        optimizer, scheduler = make_optimizer(model, stage, settings, stage.epochs * n_batches)
        if progress["step"]:
            mid_stage = (progress["epoch"], progress["batch"]) != (0, 0)
            restore_training_state(
                state_dir, model, optimizer if mid_stage else None, scheduler if mid_stage else None
            )
        for epoch in range(progress["epoch"], stage.epochs):
            start = time.perf_counter()
            batches = bucketed_batches(
                data.lengths,
                settings["batch_size"],
                seed + 1009 * s,
                epoch,
                settings.get("bucket_batches", 20),
            )
            bar = tqdm(
                total=len(batches),
                initial=progress["batch"],
                file=sys.stderr,
                desc=f"{stage.name} {epoch + 1}/{stage.epochs}",
                mininterval=5,
            )
            for b in range(progress["batch"], len(batches)):
                loss = train_step(
                    model,
                    collate(batches[b]),
                    stage,
                    optimizer,
                    scheduler,
                    settings,
                    device,
                    progress["step"],
                )
                progress.update(
                    batch=b + 1, step=progress["step"] + 1, loss_sum=progress["loss_sum"] + loss
                )
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
                if every and progress["step"] % every == 0 and b + 1 < len(batches):
                    save_training_state(state_dir, model, optimizer, scheduler, progress)
                if on_step:
                    on_step(progress)
            bar.close()
            progress["seconds"] += time.perf_counter() - start
            progress["epoch_losses"].append(
                {
                    "stage": stage.name,
                    "epoch": epoch + 1,
                    "mean_loss": progress["loss_sum"] / len(batches),
                }
            )
            progress.update(epoch=epoch + 1, batch=0, loss_sum=0.0)
            if epoch + 1 < stage.epochs:
                save_training_state(state_dir, model, optimizer, scheduler, progress)
        progress.update(stage=s + 1, epoch=0, batch=0)
        if s + 1 < len(stages):
            save_training_state(state_dir, model, optimizer, scheduler, progress)
    return progress


def discard_state(state_dir: Path) -> None:
    """Remove the resume state once the final model is safely written."""
    for path in (state_dir, state_dir.with_name(f".{state_dir.name}.old")):
        if path.exists():
            shutil.rmtree(path)
