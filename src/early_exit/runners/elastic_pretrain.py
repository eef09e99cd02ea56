"""Elastic pre-training of a backbone on a task's training text (rule `elastic_pretrain`).

The objective, the model and its batches are `early_exit.recipes.elastic_pretrain`;
this runs them and writes the ElasticBERT checkpoint the `elasticbert` recipe fine-tunes.
"""

from __future__ import annotations

import logging

from early_exit.modeling.backbone import load_backbone
from early_exit.modeling.elasticbert_io import save_elastic_backbone
from early_exit.recipes.elastic_pretrain import (
    ElasticMLM,
    MLMCollator,
    exit_groups,
    mlm_head_weights,
    mlm_stage,
)
from early_exit.runners.spec import RunSpec
from early_exit.training.run import TrainingRun

log = logging.getLogger(__name__)


def pretrain(spec: RunSpec, on_step=None) -> dict:
    """Continue pre-training `spec.backbone` on the task's training text with the
    method's `pretrain` settings; write an ElasticBERT directory to `spec.out_dir`."""
    backbone, cfg, training = spec.backbone, spec.method["pretrain"], spec.training
    run = TrainingRun.start(spec.data_dir, spec.state_dir, spec.seed, spec.device, spec.threads)
    encoder, tokenizer, pooler_init = load_backbone(backbone)
    head = mlm_head_weights(backbone)
    log.info("MLM head: %s", "the checkpoint's pre-trained one" if head else "new (none shipped)")
    model = ElasticMLM(encoder, head)
    data = run.encode(tokenizer)
    log.info(
        "elastic MLM pre-training on %d texts of %s, groups %s",
        len(data),
        run.manifest["task"],
        exit_groups(model.stack.num_layers),
    )
    collate = MLMCollator(tokenizer, data, cfg["mlm_probability"])
    stages = [mlm_stage(cfg, model.stack.num_layers)]
    # the pre-training's own epochs, learning rate and batch size over the training settings
    own = {key: cfg[key] for key in ("epochs", "learning_rate", "batch_size") if key in cfg}
    settings = spec.settings.replace(**own)
    progress = run.fit(
        model, data, collate, stages, settings, backbone, cfg, training, on_step=on_step
    )
    pretrained = model.stack.pretrained_pooler()
    layers = range(1, model.stack.num_layers + 1)
    poolers = {layer: pooler_init.get(layer, pretrained) for layer in layers}
    if any(p is None for p in poolers.values()):
        poolers = {}  # no pooler to copy: fine-tuning initialises fresh ones
    encoder = model.encoder.cpu()
    encoder.pooler = None
    save_elastic_backbone(spec.out_dir, encoder, poolers, tokenizer)
    run.finish()
    return progress
