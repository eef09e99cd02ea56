"""The three phases of COST-EFF's pipeline, as the released code runs them (torch).

What each phase does and why is in `early_exit.recipes.costeff` (the recipe module,
import-light for the config check); `early_exit.runners.slenderize` runs the phases
in order on one stream of training batches and writes the student:

1. `train_assistant`: the multi-exit teaching assistant (TA), distilled from the
   fine-tuned teacher (representation, then prediction);
2. `prune`: a copy of the TA, pruned step by step to the target width, distilled from
   the (now fixed) TA between steps, with Taylor importance at every exit;
3. `distil`: the slenderized student distilled from the TA once more.

The pruning steps change the parameters' shapes, so every training segment gets its own
optimizer (`early_exit.training.loop.train_steps`).
"""

from __future__ import annotations

import copy
import logging
import math
import time

import torch

from early_exit.modeling.backbone import load_backbone
from early_exit.modeling.model import ExitConfig, MultiExitModel
from early_exit.modeling.pruning import num_parameters, prune_to, taylor_importance
from early_exit.recipes.costeff import hidden_mse, soft_cross_entropy, teaching_assistant_loss
from early_exit.recipes.losses import exit_losses
from early_exit.recipes.teacher_cache import TeacherCache
from early_exit.training.batching import BatchStream, bucketed_batches, indexed, model_inputs
from early_exit.training.loop import autocast, train_steps
from early_exit.training.settings import TrainingSettings
from early_exit.training.stage import Stage

log = logging.getLogger(__name__)

# Importance batches are drawn with their own seed (seed + offset, step k as the epoch),
# apart from the training stream's, so measuring importance does not shift training.
IMPORTANCE_SEED_OFFSET = 7919


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


class Phases:
    """Training segments on one batch stream, each with a fresh optimizer and schedule."""

    def __init__(self, stream: BatchStream, settings: TrainingSettings, device):
        self.stream, self.settings, self.device = stream, settings, device

    def steps(self, model, steps: int, lr: float, step_loss, name: str) -> list[float]:
        stage = Stage(name, None, 1, lr, step_loss=step_loss)
        return train_steps(model, self.stream.next, steps, stage, self.settings, self.device)

    def epochs(self, model, epochs: float, lr: float, loss, name: str) -> None:
        """`epochs` of the stream (whole or not) of `loss(model, batch)`."""
        steps = round(epochs * self.stream.per_epoch)
        self.steps(model, steps, lr, lambda m, b, s: loss(m, b), name)


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


def train_assistant(
    phases: Phases, teacher: MultiExitModel, cfg: dict, backbone: dict, task_type: str
) -> MultiExitModel:
    """Phase 1: the TA distilled from the fine-tuned teacher (representation, prediction)."""
    ta = build_assistant(teacher, cfg, backbone).to(phases.device)
    to_ta = Distiller(teacher, task_type, cfg["temperature"])
    lr = cfg["ta"]["learning_rate"]
    phases.epochs(ta, cfg["ta"]["repr_epochs"], lr, to_ta.representation, "ta-repr")
    phases.epochs(ta, cfg["ta"]["pred_epochs"], lr, to_ta.assistant, "ta-pred")
    return ta.eval()


def pruning_plan(encoder_config, cfg: dict, heads: int, inter: int) -> list[tuple]:
    """Widths after each pruning step: heads down by `heads_per_step`, FFN and embedding
    rank linearly from the backbone's to the target."""
    total, per_step = encoder_config.num_attention_heads, cfg["heads_per_step"]
    inter0, rank0 = encoder_config.intermediate_size, encoder_config.hidden_size
    rank = cfg.get("embedding_rank")
    n = (total - heads) // per_step
    steps = []
    for k in range(1, n + 1):
        ffn = int(inter0 - (inter0 - inter) * k / n)
        emb = None if rank is None else int(rank0 - (rank0 - rank) * k / n)
        steps.append((total - k * per_step, ffn, emb))
    return steps


def importance_batches(stream: BatchStream, fraction: float, seed: int, k: int) -> list[dict]:
    batches = bucketed_batches(
        stream.lengths, stream.batch_size, seed + IMPORTANCE_SEED_OFFSET, k, stream.bucket_batches
    )
    n = max(1, math.ceil(fraction * len(batches)))
    return [indexed(stream.collate, b) for b in batches[:n]]


def prune(
    phases: Phases, ta: MultiExitModel, plan: list[tuple], cfg: dict, task_type: str, seed: int
) -> tuple[MultiExitModel, Distiller]:
    """Phase 2: a copy of the TA, distilled from the fixed TA (its outputs computed once,
    `early_exit.recipes.teacher_cache`) for a period, then pruned by Taylor importance,
    step by step down the plan."""
    stream, dev = phases.stream, phases.device
    student = copy.deepcopy(ta)
    precision = autocast(dev, phases.settings)
    cache = TeacherCache.build(
        ta, stream.collate, stream.lengths, stream.batch_size, dev, precision
    )
    to_student = Distiller(ta, task_type, cfg["temperature"], cache)
    settings = cfg["prune"]
    period = max(1, round(settings["period"] * stream.per_epoch))
    repr_steps = int(settings["repr_proportion"] * period)

    def period_loss(m, b, step):
        if step < repr_steps:
            return to_student.representation(m, b)
        return to_student.prediction_and_representation(m, b)

    for k, (heads, ffn, rank) in enumerate(plan):
        lr = settings["learning_rate"] * (1 + settings["lr_restore"]) ** k
        phases.steps(student, period, lr, period_loss, f"prune-{k + 1}")
        batches = importance_batches(stream, settings["importance_fraction"], seed, k)
        began = time.perf_counter()
        importance = taylor_importance(
            student,
            student.encoder,
            [{key: v.to(dev) for key, v in b.items()} for b in batches],
            to_student.importance(settings["hard_weight"]),
        )
        prune_to(student.encoder, importance, heads, ffn, rank)
        student.to(dev)
        log.info(
            "importance over %d batches (%.1f s); pruned to %d heads, FFN %d, embedding rank %s: "
            "%d parameters",
            len(batches),
            time.perf_counter() - began,
            heads,
            ffn,
            rank,
            num_parameters(student),
        )
    return student, to_student


def distil(phases: Phases, student: MultiExitModel, to_student: Distiller, cfg: dict) -> None:
    """Phase 3: the slenderized student distilled from the TA (representation, prediction)."""
    settings = cfg["distil"]
    repr_lr, pred_lr = settings["repr_learning_rate"], settings["pred_learning_rate"]
    phases.epochs(
        student, settings["repr_epochs"], repr_lr, to_student.representation, "distil-repr"
    )
    phases.epochs(
        student,
        settings["pred_epochs"],
        pred_lr,
        to_student.prediction_and_representation,
        "distil-pred",
    )
