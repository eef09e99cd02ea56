"""The COST-EFF pipeline (rule `slenderize`): TA distillation, iterative pruning, distillation.

What each phase does and why is in `early_exit.recipes.costeff` (the recipe module); the
phases are `early_exit.recipes.costeff_phases`; this module runs them. It starts from a
trained model directory (the `teacher` method's run, e.g. plain fine-tuning) so nothing
already trained is trained again, and writes the usual model directory, so predict,
sweeps, analysis and latency treat the slenderized model like any other. The pruning
steps change the parameters' shapes, so every training segment gets its own optimizer
(AdamW, linear schedule, clipping from `early_exit.training.loop.train_steps`); a run is
deterministic for a seed and restarts from the beginning when interrupted (it does not
resume mid-way).
"""

from __future__ import annotations

import logging
import time

from early_exit.modeling.checkpoint import load_model_dir, save_model_dir
from early_exit.modeling.pruning import bert_layers, layer_shapes, num_parameters
from early_exit.modeling.widths import check_slenderize
from early_exit.recipes.costeff_phases import Phases, distil, prune, pruning_plan, train_assistant
from early_exit.runners.spec import RunSpec
from early_exit.support.errors import DataError
from early_exit.training.batching import BatchStream
from early_exit.training.run import TrainingRun

log = logging.getLogger(__name__)


def task_settings(method: dict, task: str) -> dict:
    """The method's `slenderize` settings with the task's overrides (`slenderize.tasks`)."""
    cfg = method["slenderize"]
    per_task = cfg.get("tasks", {}).get(task, {})
    return {**cfg, **{k: {**cfg.get(k, {}), **v} for k, v in per_task.items()}}


def slenderize(spec: RunSpec) -> dict:
    """Run the COST-EFF pipeline from `spec.teacher` (a trained model directory) and write
    `spec.out_dir` (a model directory) atomically."""
    start = time.perf_counter()
    backbone, settings = spec.backbone, spec.settings
    # restarts, never resumes: no state_dir
    run = TrainingRun.start(spec.data_dir, None, spec.seed, spec.device, spec.threads)
    teacher, tokenizer, teacher_meta = load_model_dir(spec.teacher)
    if teacher_meta["label_names"] != run.manifest["label_names"]:
        raise DataError(
            f"{spec.teacher}: trained on other labels than {spec.data_dir}; rerun rule train for it"
        )
    cfg = task_settings(spec.method, run.manifest["task"])
    encoder_config = teacher.encoder.config
    bert_layers(teacher.encoder)
    heads, inter = check_slenderize(encoder_config, cfg)
    data = run.encode(tokenizer)
    stream = BatchStream(
        run.collator(tokenizer, data),
        data.lengths,
        settings.batch_size,
        spec.seed,
        settings.bucket_batches,
    )
    teacher.to(run.device)
    phases = Phases(stream, settings, run.device)

    ta = train_assistant(phases, teacher, cfg, backbone, run.task_type)
    ta_parameters = num_parameters(ta)
    plan = pruning_plan(encoder_config, cfg, heads, inter)
    student, to_student = prune(phases, ta, plan, cfg, run.task_type, spec.seed)
    distil(phases, student, to_student, cfg)

    params = num_parameters(student)
    progress = {"seconds": time.perf_counter() - start, "steps": stream.drawn}
    meta = run.model_meta(backbone, spec.method, settings, progress)
    meta["slenderize"] = {
        "teacher": str(spec.teacher),
        "shapes": layer_shapes(student.encoder),
        "num_parameters": params,
        "num_parameters_unpruned": ta_parameters,
        "parameter_ratio": params / ta_parameters,
    }
    save_model_dir(spec.out_dir, student.cpu(), tokenizer, meta)
    log.info(
        "slenderized: %d of %d parameters (%.3f)", params, ta_parameters, params / ta_parameters
    )
    return meta
