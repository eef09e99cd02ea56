"""The training loop: AdamW, a learning-rate schedule, gradient clipping, resumable.

Readable top to bottom on purpose. A recipe supplies the stages (loss, what is
trainable, epochs, learning rate); everything else is shared. Batches are a pure
function of (seed, stage, epoch), and the training state (weights, optimizer,
scheduler, RNG and a `ResumeState`) is saved every `checkpoint_every` steps and at
epoch and stage ends, so a resumed run continues exactly where the interrupted one
stopped.
"""

from __future__ import annotations

import functools
import logging
import math
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import get_constant_schedule, get_linear_schedule_with_warmup

from early_exit.modeling.checkpoint import (
    load_progress,
    restore_training_state,
    save_training_state,
)
from early_exit.support.atomic import remove_stale_temporaries
from early_exit.training.batching import Collator, Encoded, bucketed_batches, model_inputs
from early_exit.training.frozen_encoder import check_frozen, frozen_collator, frozen_logits
from early_exit.training.hardware import native_bf16
from early_exit.training.settings import TrainingSettings
from early_exit.training.stage import Stage

log = logging.getLogger(__name__)

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "LayerNorm.bias")


@dataclass
class ResumeState:
    """Where training stands; saved with every checkpoint, so a rerun continues from it."""

    fingerprint: str = ""  # which run saved it: another run's state is discarded
    stage: int = 0
    epoch: int = 0
    batch: int = 0  # batches done in the current epoch
    step: int = 0  # optimizer steps done in all stages
    seconds: float = 0.0
    loss_sum: float = 0.0  # over the current epoch
    epoch_losses: list[dict] = field(default_factory=list)
    last_loss: float = float("nan")

    def step_done(self, loss: float) -> None:
        self.batch, self.step, self.loss_sum = self.batch + 1, self.step + 1, self.loss_sum + loss
        self.last_loss = loss

    def end_epoch(self, stage: str, n_batches: int) -> None:
        self.epoch_losses.append(
            {"stage": stage, "epoch": self.epoch + 1, "mean_loss": self.loss_sum / n_batches}
        )
        self.epoch, self.batch, self.loss_sum = self.epoch + 1, 0, 0.0

    def end_stage(self) -> None:
        self.stage, self.epoch, self.batch = self.stage + 1, 0, 0


# Each stage shuffles with its own seed (seed + stride * stage), so a two-stage recipe
# does not see its second stage's batches in the first stage's order; a prime stride
# keeps the seeds of nearby runs and stages apart.
STAGE_SEED_STRIDE = 1009


def make_optimizer(
    model: torch.nn.Module, stage: Stage, settings: TrainingSettings, total_steps: int
):
    """AdamW over the stage's trainable parameters (no decay on biases and LayerNorm), with
    the configured schedule (`settings.schedule`, linear warmup and decay by default)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        param.requires_grad_(stage.trainable(name))
        if param.requires_grad:
            (no_decay if any(k in name for k in NO_DECAY) else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": settings.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    # The fused kernel updates every tensor in one pass: the per-tensor loop took 10% of a
    # MiniLM training step on a 2-core CPU (same update rule, other rounding).
    optimizer = torch.optim.AdamW(groups, lr=stage.learning_rate, eps=1e-8, fused=True)
    if settings.schedule == "constant":
        return optimizer, get_constant_schedule(optimizer)
    warmup = int(round(settings.warmup_ratio * total_steps))
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup, total_steps)


def training_precision(device: torch.device, settings: TrainingSettings) -> str:
    """What the training steps run in: "bf16" (autocast: bf16 matrix products, fp32
    weights, optimizer and losses) when the settings ask for it and the device computes
    bf16 natively, else "fp32". Emulated bf16 is slower than fp32, so asking for bf16
    on other hardware trains in fp32 (logged, and recorded with the model)."""
    if settings.precision != "bf16":
        return "fp32"
    if native_bf16(device):
        return "bf16"
    _warn_no_bf16(str(device))
    return "fp32"


@functools.cache
def _warn_no_bf16(device: str) -> None:  # once per process, not at every step
    log.warning("precision bf16: %s has no native bf16, training in fp32", device)


def autocast(device: torch.device, settings: TrainingSettings):
    """The training steps' autocast context (see `training_precision`)."""
    enabled = training_precision(device, settings) == "bf16"
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def stage_loss(model, batch: dict, stage: Stage, step: int) -> torch.Tensor:
    """The stage's loss on one batch (already on the device)."""
    if stage.step_loss is not None:
        return stage.step_loss(model, batch, step)
    if stage.frozen_encoder:
        return stage.loss(frozen_logits(model, batch).float(), batch["labels"])
    return stage.loss(model(**model_inputs(batch)).logits.float(), batch["labels"])


def train_step(
    model,
    batch,
    stage: Stage,
    optimizer,
    scheduler,
    settings: TrainingSettings,
    device,
    step: int = 0,
) -> float:
    batch = {k: v.to(device) for k, v in batch.items()}
    with autocast(device, settings):
        loss = stage_loss(model, batch, stage, step)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
    optimizer.step()
    scheduler.step()
    return float(loss.detach())


def fit(
    model: torch.nn.Module,
    data: Encoded,
    collate: Collator,
    stages: list[Stage],
    *,
    settings: TrainingSettings,
    seed: int,
    device: torch.device,
    state_dir: Path,
    on_step: Callable[[ResumeState], None] | None = None,
    fingerprint: str = "",
) -> dict:
    """Train through all stages; resume from `state_dir` when it holds a saved state.

    `fingerprint` identifies the run (config, data, seed): a saved state with another
    fingerprint belongs to a different run and is discarded instead of resumed.
    Returns the progress record (per-epoch mean losses, steps, seconds).
    """
    state = resume_state(state_dir, fingerprint)
    resuming = state.step > 0
    model.to(device)
    every = settings.checkpoint_every
    n_batches = math.ceil(len(data) / settings.batch_size)
    for s, stage in enumerate(stages[state.stage :], start=state.stage):
        optimizer, scheduler = make_optimizer(model, stage, settings, stage.epochs * n_batches)
        if resuming:  # weights and RNG; mid-stage also the optimizer and schedule
            mid_stage = (state.epoch, state.batch) != (0, 0)
            kept = (optimizer, scheduler) if mid_stage else (None, None)
            restore_training_state(state_dir, model, *kept)
            resuming = False
        save = partial(save_training_state, state_dir, model, optimizer, scheduler)
        stage_collate = stage_mode(model, stage, data, collate, settings, device)
        for epoch in range(state.epoch, stage.epochs):
            batches = bucketed_batches(
                data.lengths,
                settings.batch_size,
                seed + STAGE_SEED_STRIDE * s,
                epoch,
                settings.bucket_batches,
            )
            for batch in remaining(batches, state, f"{stage.name} {epoch + 1}/{stage.epochs}"):
                loss = train_step(
                    model,
                    stage_collate(batch),
                    stage,
                    optimizer,
                    scheduler,
                    settings,
                    device,
                    state.step,
                )
                state.step_done(loss)
                if every and state.step % every == 0 and state.batch < len(batches):
                    save(asdict(state))
                if on_step:
                    on_step(state)
            state.end_epoch(stage.name, len(batches))
            if epoch + 1 < stage.epochs:
                save(asdict(state))
        state.end_stage()
        if s + 1 < len(stages):
            save(asdict(state))
    return asdict(state)


def stage_mode(model, stage: Stage, data, collate, settings: TrainingSettings, device) -> Collator:
    """Put the model in the stage's mode; returns the stage's collator. A frozen-encoder
    stage runs the encoder in eval mode and computes its outputs once (after a resumed
    run's weights are restored)."""
    model.train()
    if not stage.frozen_encoder:
        return collate
    check_frozen(model, stage)
    model.encoder.eval()
    precision = autocast(device, settings)
    return frozen_collator(model, data, collate, device, settings.batch_size, precision)


def remaining(batches: list, state: ResumeState, desc: str) -> Iterator:
    """The batches of an epoch not done yet, with a progress bar; adds the time taken."""
    start = time.perf_counter()
    bar = tqdm(total=len(batches), initial=state.batch, file=sys.stderr, desc=desc, mininterval=5)
    for batch in batches[state.batch :]:
        yield batch
        bar.update(1)
        bar.set_postfix(loss=f"{state.last_loss:.3f}", refresh=False)
    bar.close()
    state.seconds += time.perf_counter() - start


def resume_state(state_dir: Path, fingerprint: str) -> ResumeState:
    """The saved state of this run, or a fresh one (a state saved by another run is removed)."""
    saved = load_progress(state_dir)
    if saved is not None and saved.get("fingerprint") != fingerprint:
        log.warning("discarding %s: saved by a run with different settings or data", state_dir)
        discard_state(state_dir)
        saved = None
    if saved is None:
        return ResumeState(fingerprint=fingerprint)
    state = ResumeState(**saved)
    log.info("resuming from %s at step %d", state_dir, state.step)
    return state


def discard_state(state_dir: Path) -> None:
    """Remove the resume state once the final model is safely written (with what a job
    killed while saving it left behind)."""
    for path in (state_dir, state_dir.with_name(f".{state_dir.name}.old")):
        if path.exists():
            shutil.rmtree(path)
    remove_stale_temporaries(state_dir)


def train_steps(
    model,
    batches: Callable[[], dict],
    steps: int,
    stage: Stage,
    settings: TrainingSettings,
    device,
    schedule_steps: int | None = None,
) -> list[float]:
    """`steps` optimizer steps of `stage` on batches drawn from `batches()`, with one
    fresh optimizer and schedule: training measured in steps rather than epochs (COST-EFF's
    phases run whole or partial epochs of one stream, and change shapes between them).
    Not resumable: a job using it restarts from the beginning."""
    if steps <= 0:
        return []
    optimizer, scheduler = make_optimizer(model, stage, settings, schedule_steps or steps)
    model.train()
    began = time.perf_counter()
    losses = []
    for step in tqdm(range(steps), desc=stage.name, file=sys.stderr, mininterval=5):
        losses.append(
            train_step(model, batches(), stage, optimizer, scheduler, settings, device, step)
        )
    seconds = time.perf_counter() - began
    log.info(
        "%s: %d steps, mean loss %.4f, %.1f s", stage.name, steps, sum(losses) / steps, seconds
    )
    return losses
