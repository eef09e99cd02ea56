"""Fine-tune one multi-exit model on one prepared task (the workflow's `train` rule)."""

from __future__ import annotations

import logging
from pathlib import Path

from early_exit.modeling.backbone import load_backbone
from early_exit.modeling.checkpoint import WEIGHTS, load_model_dir, save_model_dir
from early_exit.modeling.model import ExitConfig, MultiExitModel
from early_exit.recipes import RecipeContext, get_recipe
from early_exit.runners.spec import RunSpec
from early_exit.support.atomic import sha256_file
from early_exit.support.errors import DataError
from early_exit.training.run import TrainingRun

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


def take_first_stage(model: MultiExitModel, first_stage_dir: Path) -> str:
    """Load the backbone and final head trained by a single-exit run whose training is this
    recipe's first stage (DeeBERT's stage 1 is plain fine-tuning: same backbone, data,
    seed and settings), so that stage is not trained twice. Returns the weights' sha256,
    which identifies the starting point in the run's fingerprint."""
    donor, _, meta = load_model_dir(first_stage_dir)
    if donor.exit_layers != [model.num_layers] or donor.cfg.head != model.cfg.head:
        raise DataError(
            f"{first_stage_dir}: has exits {donor.exit_layers} ({donor.cfg.head} heads); a "
            f"first stage needs one {model.cfg.head} exit at layer {model.num_layers}"
        )
    final = len(model.exit_layers) - 1
    weights = {}
    for name, tensor in donor.state_dict().items():
        head, _, rest = name.partition(".0.")  # the donor's only exit is exit 0
        weights[f"{head}.{final}.{rest}" if head in ("poolers", "classifiers") else name] = tensor
    missing, unexpected = model.load_state_dict(weights, strict=False)
    untouched = [k for k in missing if k.startswith("encoder.")]
    if unexpected or untouched:
        raise DataError(f"{first_stage_dir}: weights do not fit this model ({unexpected})")
    log.info(
        "first stage taken from %s (%s, seed %s)", first_stage_dir, meta["method"], meta["seed"]
    )
    return sha256_file(Path(first_stage_dir) / WEIGHTS)


def finetune(spec: RunSpec, on_step=None) -> dict:
    """Train and write `spec.out_dir` (a self-contained model directory) atomically.

    `spec.first_stage`: the model directory of a run that already trained this recipe's
    first stage (see `take_first_stage`); training then starts at the second stage.
    """
    backbone, method, settings = spec.backbone, spec.method, spec.settings
    run = TrainingRun.start(spec.data_dir, spec.state_dir, spec.seed, spec.device, spec.threads)
    model, tokenizer, recipe = build_model(backbone, method, run.num_labels)
    stages = recipe.stages(settings, RecipeContext(run.task_type, tuple(model.exit_layers)))
    start = None
    if spec.first_stage is not None:
        start = take_first_stage(model, spec.first_stage)
        stages = stages[1:]
    data = run.encode(tokenizer)
    log.info(
        "training %s on %s (%d examples, exits %s) on %s",
        recipe.name,
        run.manifest["task"],
        len(data),
        model.exit_layers,
        run.device,
    )
    identity = (backbone, method, settings.given, start)  # with the seed and data: the run's id
    collate = run.collator(tokenizer, data)
    progress = run.fit(model, data, collate, stages, settings, *identity, on_step=on_step)
    meta = run.model_meta(backbone, method, settings, progress)
    meta["first_stage_from"] = str(spec.first_stage) if spec.first_stage else None
    save_model_dir(spec.out_dir, model.cpu(), tokenizer, meta)
    run.finish()
    return meta
