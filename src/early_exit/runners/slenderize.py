"""The COST-EFF pipeline (rule `slenderize`): TA distillation, iterative pruning, distillation.

What each phase does and why is in `early_exit.recipes.costeff` (the recipe module);
this module runs it. It starts from a trained model directory (the `teacher`
method's run, e.g. plain fine-tuning) so nothing already trained is trained again, and
writes the usual model directory, so predict, sweeps, analysis and latency treat the
slenderized model like any other. The pruning steps change the parameters' shapes, so
every training segment gets its own optimizer (AdamW, linear schedule, clipping from
`early_exit.training.loop`); a run is deterministic for a seed and restarts from the
beginning when interrupted (it does not resume mid-way).
"""

from __future__ import annotations

import copy
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from early_exit.errors import DataError
from early_exit.modeling.backbone import load_backbone
from early_exit.modeling.checkpoint import load_model_dir, save_model_dir
from early_exit.modeling.model import ExitConfig, MultiExitModel
from early_exit.modeling.pruning import (
    bert_layers,
    layer_shapes,
    num_parameters,
    prune_to,
    taylor_importance,
)
from early_exit.modeling.widths import check_slenderize
from early_exit.recipes.costeff import hidden_mse, soft_cross_entropy, teaching_assistant_loss
from early_exit.recipes.stage import Stage, exit_losses
from early_exit.recipes.teacher_cache import TeacherCache
from early_exit.training.batching import INDEX, Collator, bucketed_batches, model_inputs
from early_exit.training.loop import autocast, make_optimizer, train_step
from early_exit.training.run import TrainingRun

log = logging.getLogger(__name__)


@dataclass
class Batches:
    """An endless, deterministic stream of training batches (epochs of bucketed batches)."""

    collate: Collator
    lengths: np.ndarray
    batch_size: int
    seed: int
    bucket_batches: int = 20
    epoch: int = -1
    drawn: int = 0  # batches handed out so far
    queue: list = field(default_factory=list)

    @property
    def per_epoch(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def next(self) -> dict:
        if not self.queue:
            self.epoch += 1
            self.queue = list(
                bucketed_batches(
                    self.lengths, self.batch_size, self.seed, self.epoch, self.bucket_batches
                )
            )
        self.drawn += 1
        return indexed(self.collate, self.queue.pop(0))


def indexed(collate: Collator, indices: np.ndarray) -> dict:
    """A batch that also carries its example indices (for a cached teacher)."""
    return collate(indices) | {INDEX: torch.as_tensor(indices)}


class Distiller:
    """The losses of one teacher-student pair (`costeff` defines them). `cache`: the
    teacher's outputs computed once (`TeacherCache`); None runs the teacher per batch."""

    def __init__(
        self,
        teacher: MultiExitModel,
        task_type: str,
        temperature: float,
        cache: TeacherCache | None = None,
    ):
        self.teacher, self.task_type, self.temperature = teacher, task_type, temperature
        self.cache = cache

    @torch.no_grad()
    def reference(self, batch: dict):
        if self.cache is not None:
            return self.cache.outputs(batch)
        return self.teacher.eval()(**model_inputs(batch), output_hidden_states=True)

    def parts(self, student, batch: dict) -> tuple[torch.Tensor, torch.Tensor, object, object]:
        out = student(**model_inputs(batch), output_hidden_states=True)
        ref = self.reference(batch)
        repr_loss = hidden_mse(out.hidden_states, ref.hidden_states, batch["attention_mask"])
        return out.logits.float(), repr_loss, ref, out

    def representation(self, student, batch: dict) -> torch.Tensor:
        return self.parts(student, batch)[1]

    def prediction_and_representation(self, student, batch: dict) -> torch.Tensor:
        logits, repr_loss, ref, _ = self.parts(student, batch)
        soft = soft_cross_entropy(logits, ref.logits.float(), self.temperature, self.task_type)
        return soft.sum() + repr_loss

    def importance(self, hard_weight: float):
        """COST-EFF's importance objective: (1-w) soft + w hard at every exit, plus repr."""

        def loss(student, batch: dict) -> torch.Tensor:
            logits, repr_loss, ref, _ = self.parts(student, batch)
            soft = soft_cross_entropy(logits, ref.logits.float(), self.temperature, self.task_type)
            hard = exit_losses(logits, batch["labels"], self.task_type)
            return (1 - hard_weight) * soft.sum() + hard_weight * hard.sum() + repr_loss

        return loss

    def assistant(self, student, batch: dict) -> torch.Tensor:
        out = student(**model_inputs(batch))
        final = self.reference(batch).logits[:, -1].float()
        return teaching_assistant_loss(
            out.logits.float(), final, batch["labels"], self.temperature, self.task_type
        )


def train_segment(
    model,
    stream: Batches,
    steps: int,
    lr: float,
    settings: dict,
    device,
    step_loss,
    name: str,
    schedule_steps: int | None = None,
) -> list[float]:
    """`steps` optimizer steps of `step_loss(model, batch, step)`, one fresh AdamW + schedule."""
    if steps <= 0:
        return []
    stage = Stage(name, None, 1, lr, step_loss=step_loss)
    optimizer, scheduler = make_optimizer(model, stage, settings, schedule_steps or steps)
    model.train()
    began = time.perf_counter()
    losses = []
    for step in tqdm(range(steps), desc=name, file=sys.stderr, mininterval=5):
        batch = stream.next()
        losses.append(train_step(model, batch, stage, optimizer, scheduler, settings, device, step))
    seconds = time.perf_counter() - began
    log.info("%s: %d steps, mean loss %.4f, %.1f s", name, steps, float(np.mean(losses)), seconds)
    return losses


def schedule(total_heads: int, heads: int, per_step: int, inter0: int, inter: int, rank0, rank):
    """Widths after each pruning step: heads down by `per_step`, FFN and rank linearly."""
    n = (total_heads - heads) // per_step
    steps = []
    for k in range(1, n + 1):
        ffn = int(inter0 - (inter0 - inter) * k / n)
        emb = None if rank is None else int(rank0 - (rank0 - rank) * k / n)
        steps.append((total_heads - k * per_step, ffn, emb))
    return steps


def build_assistant(teacher: MultiExitModel, cfg: dict, backbone: dict) -> MultiExitModel:
    """The TA: exits at every layer, tanh heads, gradient equilibrium."""
    if cfg["ta"]["init"] == "teacher":
        encoder = copy.deepcopy(teacher.encoder)
    else:  # the paper: the pre-trained backbone
        encoder = load_backbone(backbone)[0]
    exit_cfg = ExitConfig(
        num_labels=teacher.cfg.num_labels,
        exit_layers="all",
        pooling=teacher.cfg.pooling,
        head="tanh",
        gradient_equilibrium=True,
        extra={"recipe": "costeff"},
    )
    return MultiExitModel(encoder, exit_cfg)


def importance_batches(stream: Batches, fraction: float, seed: int, k: int) -> list[dict]:
    batches = bucketed_batches(stream.lengths, stream.batch_size, seed + 7919, k)
    n = max(1, math.ceil(fraction * len(batches)))
    return [indexed(stream.collate, b) for b in batches[:n]]


def slenderize(
    teacher_dir: Path,
    data_dir: Path,
    out_dir: Path,
    backbone: dict,
    method: dict,
    training: dict,
    seed: int,
    device: str = "auto",
    threads: int | None = None,
) -> dict:
    """Run the COST-EFF pipeline and write `out_dir` (a model directory) atomically."""
    start = time.perf_counter()
    run = TrainingRun.start(data_dir, None, seed, device, threads)  # restarts, never resumes
    manifest, task_type, dev = run.manifest, run.task_type, run.device
    teacher, tokenizer, teacher_meta = load_model_dir(teacher_dir)
    if teacher_meta["label_names"] != manifest["label_names"]:
        raise DataError(f"{teacher_dir}: trained on other labels than {data_dir}; rerun it")
    cfg = method["slenderize"]
    per_task = cfg.get("tasks", {}).get(manifest["task"], {})
    cfg = {**cfg, **{k: {**cfg.get(k, {}), **v} for k, v in per_task.items()}}
    encoder_config = teacher.encoder.config
    bert_layers(teacher.encoder)
    heads, inter = check_slenderize(encoder_config, cfg)
    data = run.encode(tokenizer)
    stream = Batches(
        run.collator(tokenizer, data),
        data.lengths,
        training["batch_size"],
        seed,
        training.get("bucket_batches", 20),
    )
    teacher.to(dev)
    temperature = cfg["temperature"]

    def phase(model, epochs: float, lr: float, step_loss, name: str) -> None:
        """`epochs` of the stream (whole or not) with one fresh optimizer and schedule."""
        steps = round(epochs * stream.per_epoch)
        train_segment(model, stream, steps, lr, training, dev, step_loss, name)

    # 1. the teaching assistant, distilled from the fine-tuned model
    ta = build_assistant(teacher, cfg, backbone).to(dev)
    to_ta = Distiller(teacher, task_type, temperature)
    ta_cfg = cfg["ta"]
    lr = ta_cfg["learning_rate"]
    phase(ta, ta_cfg["repr_epochs"], lr, lambda m, b, s: to_ta.representation(m, b), "ta-repr")
    phase(ta, ta_cfg["pred_epochs"], lr, lambda m, b, s: to_ta.assistant(m, b), "ta-pred")
    ta.eval()
    ta_parameters = num_parameters(ta)

    # 2. iterative pruning of a copy of the TA, distilled from the TA (now fixed: its
    # outputs are computed once, `early_exit.recipes.teacher_cache`)
    student = copy.deepcopy(ta)
    cache = TeacherCache.build(
        ta, stream.collate, data.lengths, stream.batch_size, dev, autocast(dev, training)
    )
    to_student = Distiller(ta, task_type, temperature, cache)
    prune = cfg["prune"]
    period = max(1, round(prune["period"] * stream.per_epoch))
    repr_steps = int(prune["repr_proportion"] * period)
    rank0 = encoder_config.hidden_size
    plan = schedule(
        encoder_config.num_attention_heads,
        heads,
        cfg["heads_per_step"],
        encoder_config.intermediate_size,
        inter,
        rank0,
        cfg.get("embedding_rank"),
    )

    def period_loss(m, b, step):
        if step < repr_steps:
            return to_student.representation(m, b)
        return to_student.prediction_and_representation(m, b)

    for k, (h, ffn, rank) in enumerate(plan):
        lr = prune["learning_rate"] * (1 + prune["lr_restore"]) ** k
        train_segment(student, stream, period, lr, training, dev, period_loss, f"prune-{k + 1}")
        batches = importance_batches(stream, prune["importance_fraction"], seed, k)
        began = time.perf_counter()
        importance = taylor_importance(
            student,
            student.encoder,
            [{kk: v.to(dev) for kk, v in b.items()} for b in batches],
            to_student.importance(prune["hard_weight"]),
        )
        shapes = prune_to(student.encoder, importance, h, ffn, rank)
        student.to(dev)
        log.info(
            "importance over %d batches (%.1f s); pruned to %d heads, FFN %d, embedding rank %s: "
            "%d parameters",
            len(batches),
            time.perf_counter() - began,
            h,
            ffn,
            rank,
            num_parameters(student),
        )

    # 3. distillation of the slenderized student from the TA
    distil = cfg["distil"]
    phase(
        student,
        distil["repr_epochs"],
        distil["repr_learning_rate"],
        lambda m, b, s: to_student.representation(m, b),
        "distil-repr",
    )
    phase(
        student,
        distil["pred_epochs"],
        distil["pred_learning_rate"],
        lambda m, b, s: to_student.prediction_and_representation(m, b),
        "distil-pred",
    )

    shapes = layer_shapes(student.encoder)
    params = num_parameters(student)
    progress = {"seconds": time.perf_counter() - start, "steps": stream.drawn}
    meta = run.model_meta(backbone, method, training, progress)
    meta["slenderize"] = {
        "teacher": str(teacher_dir),
        "shapes": shapes,
        "num_parameters": params,
        "num_parameters_unpruned": ta_parameters,
        "parameter_ratio": params / ta_parameters,
    }
    save_model_dir(Path(out_dir), student.cpu(), tokenizer, meta)
    log.info(
        "slenderized: %d of %d parameters (%.3f)", params, ta_parameters, params / ta_parameters
    )
    return meta
