"""Checkpoints in the ElasticBERT layout (the `fnlp/elasticbert-base` hub repository).

ElasticBERT is a BERT whose every layer has its own pre-trained pooler. Its
checkpoints use the BERT layer layout under an `elasticbert.` prefix:

    config.json       model_type "elasticbert": BERT fields + num_output_layers,
                      max_output_layers
    vocab.txt         a BERT (WordPiece) vocabulary
    weights           elasticbert.embeddings.*, elasticbert.encoder.layer.{i}.*  (as BertModel)
                      elasticbert.encoder.pooler.{i}.dense.{weight,bias}  (0-based layer i)
                      fine-tuned checkpoints add classifier.* (ignored here)

`load_elastic_backbone` maps such a checkpoint onto a transformers `BertModel` plus
one pooler per layer; `save_elastic_backbone` writes our elastic pre-training
output in the same layout, so both are loaded by the same code. Weights are read
from safetensors; a `pytorch_model.bin` is read with torch's weights-only loader
(no arbitrary objects are unpickled).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import BertConfig, BertModel, BertTokenizer

from early_exit.support.atomic import atomic_dir, verify_checksums, write_checksums
from early_exit.support.errors import ConfigError, DataError

log = logging.getLogger(__name__)

REWRITE = "rerun rule elastic_pretrain (or download_model for a downloaded checkpoint)"
PREFIX = "elasticbert."
POOLER = re.compile(r"^elasticbert\.encoder\.pooler\.(\d+)\.dense\.(weight|bias)$")
BERT_FIELDS = (
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
    "intermediate_size", "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob",
    "max_position_embeddings", "type_vocab_size", "initializer_range", "layer_norm_eps",
    "pad_token_id",
)  # fmt: skip


def _local_dir(name: str, revision: str | None) -> Path:
    """A local directory, or a hub repository downloaded into the HF cache."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if name.startswith((".", "/", "~")):
        raise ConfigError(f"backbone.name: ElasticBERT directory {name!r} does not exist")
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.txt", "*.safetensors", "*.bin"]
    return Path(snapshot_download(repo_id=name, revision=revision, allow_patterns=patterns))


def _read_weights(directory: Path) -> dict[str, torch.Tensor]:
    safetensors = sorted(directory.glob("*.safetensors"))
    if safetensors:
        try:
            return {k: v for f in safetensors for k, v in load_file(str(f)).items()}
        except SafetensorError as err:
            raise DataError(f"{directory}: unreadable weights ({err}); {REWRITE}") from None
    bins = sorted(directory.glob("pytorch_model*.bin"))
    if bins:
        return {k: v for f in bins for k, v in torch.load(f, weights_only=True).items()}
    raise DataError(f"{directory}: no model.safetensors or pytorch_model.bin")


def load_elastic_backbone(
    name: str, revision: str | None = None
) -> tuple[BertModel, BertTokenizer, dict[int, nn.Linear]]:
    """Encoder, tokenizer and {layer number: pooler dense} from an ElasticBERT checkpoint."""
    directory = _local_dir(name, revision)
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise DataError(f"{directory}: no config.json (not an ElasticBERT checkpoint)")
    verify_checksums(directory, REWRITE)  # one elastic pre-training wrote (a hub copy has none)
    try:
        raw = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise DataError(f"{config_file}: cannot read it ({err}); {REWRITE}") from None
    config = BertConfig(**{k: raw[k] for k in BERT_FIELDS if k in raw})
    encoder = BertModel(config, add_pooling_layer=False)
    weights = _read_weights(directory)
    body = {
        k[len(PREFIX) :]: v
        for k, v in weights.items()
        if k.startswith(PREFIX) and not POOLER.match(k)
    }
    result = encoder.load_state_dict(body, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith(("position_ids", "token_type_ids"))]
    if missing or result.unexpected_keys:
        raise DataError(
            f"{directory}: not the ElasticBERT layout (missing {missing[:5]}, "
            f"unexpected {result.unexpected_keys[:5]})"
        )
    poolers = _poolers(weights, config.hidden_size)
    try:
        tokenizer = BertTokenizer.from_pretrained(directory)
    except (OSError, ValueError) as err:
        raise DataError(f"{directory}: cannot load the tokenizer ({err}); {REWRITE}") from None
    log.info(
        "loaded ElasticBERT from %s: %d layers, poolers for layers %s",
        directory,
        config.num_hidden_layers,
        sorted(poolers),
    )
    return encoder, tokenizer, poolers


def _poolers(weights: dict[str, torch.Tensor], hidden: int) -> dict[int, nn.Linear]:
    poolers: dict[int, nn.Linear] = {}
    for key, value in weights.items():
        match = POOLER.match(key)
        if match:
            layer = int(match.group(1)) + 1
            dense = poolers.setdefault(layer, nn.Linear(hidden, hidden))
            getattr(dense, match.group(2)).data.copy_(value)
    return poolers


def save_elastic_backbone(
    out_dir: Path, encoder: BertModel, poolers: dict[int, nn.Linear], tokenizer
) -> None:
    """Write encoder + per-layer poolers in the ElasticBERT layout, atomically."""
    state = {
        PREFIX + k: v
        for k, v in encoder.state_dict().items()
        if not k.startswith("pooler.") and not k.endswith("position_ids")
    }
    for layer, dense in poolers.items():
        for part in ("weight", "bias"):
            state[f"{PREFIX}encoder.pooler.{layer - 1}.dense.{part}"] = getattr(dense, part)
    state = {k: v.detach().cpu().clone().contiguous() for k, v in state.items()}  # unshare
    config = {k: getattr(encoder.config, k) for k in BERT_FIELDS}
    n_layers = encoder.config.num_hidden_layers
    config |= {
        "model_type": "elasticbert",
        "architectures": ["ElasticBertModel"],
        "num_output_layers": len(poolers),
        "max_output_layers": n_layers,
    }
    with atomic_dir(out_dir) as tmp:
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        tokenizer.save_pretrained(tmp)
        write_checksums(tmp)
