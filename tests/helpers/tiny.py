"""Tiny stand-ins for tests: a random BERT saved as a local model directory, prepared data."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertModel, BertTokenizer

WORDS = [
    "the",
    "a",
    "market",
    "shares",
    "bank",
    "profit",
    "film",
    "music",
    "star",
    "award",
    "election",
    "minister",
    "vote",
    "party",
    "match",
    "goal",
    "team",
    "player",
    "phone",
    "software",
    "internet",
    "computer",
    "game",
    "win",
    "lose",
    "new",
    "old",
    "big",
    "small",
]


def make_tiny_bert(
    path: Path, num_layers: int = 3, hidden: int = 32, seed: int = 0, dropout: float = 0.1
) -> Path:
    """A randomly initialised 3-layer BERT with its own word-level vocab, saved like a hub repo."""
    path.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    tokenizer = BertTokenizer(vocab={word: i for i, word in enumerate(vocab)}, do_lower_case=True)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        intermediate_size=2 * hidden,
        max_position_embeddings=64,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def fnlp_checkpoint(path, fmt="safetensors", layers=3, hidden=32):
    """A checkpoint written the way fnlp/elasticbert-base is laid out, key by key."""
    torch.manual_seed(1)
    config = BertConfig(
        vocab_size=5 + len(WORDS),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    body = BertModel(config, add_pooling_layer=False).state_dict()
    state = {f"elasticbert.{k}": v.clone() for k, v in body.items() if "position_ids" not in k}
    for i in range(layers):
        state[f"elasticbert.encoder.pooler.{i}.dense.weight"] = torch.randn(hidden, hidden)
        state[f"elasticbert.encoder.pooler.{i}.dense.bias"] = torch.randn(hidden)
    state["classifier.weight"] = torch.randn(2, hidden)  # fine-tuned checkpoints carry one
    path.mkdir(parents=True)
    if fmt == "safetensors":
        save_file(state, str(path / "model.safetensors"))
    else:
        torch.save(state, path / "pytorch_model.bin")
    raw = config.to_dict() | {
        "model_type": "elasticbert",
        "num_output_layers": layers,
        "max_output_layers": layers,
        "architectures": ["ElasticBertModel"],
    }
    (path / "config.json").write_text(json.dumps(raw))
    (path / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n"
    )
    return state


def make_examples(n: int, num_labels: int = 3, seed: int = 0) -> list[dict]:
    """Prepared-format examples whose label is learnable from the words used."""
    gen = torch.Generator().manual_seed(seed)
    per_label = len(WORDS) // num_labels
    examples = []
    for i in range(n):
        label = i % num_labels
        pool = WORDS[label * per_label : (label + 1) * per_label]
        length = int(torch.randint(2, 9, (1,), generator=gen))
        words = [pool[int(j)] for j in torch.randint(0, len(pool), (length,), generator=gen)]
        examples.append({"id": f"ex{i}", "text": " ".join(words), "label": label})
    return examples


def tiny_training(**overrides) -> dict:
    """Training settings for the tiny models of the tests (batch 8, one epoch at 1e-3, no
    warmup or weight decay); each test overrides what its model needs."""
    settings = {
        "epochs": 1,
        "batch_size": 8,
        "learning_rate": 1e-3,
        "weight_decay": 0.0,
        "warmup_ratio": 0.0,
        "max_grad_norm": 1.0,
    }
    return settings | overrides


def prepare_tiny_task(root: Path, splits, max_length: int = 16) -> Path:
    """A prepared task `tiny` in `root / "data"` from `make_examples`: one JSONL file per
    split, `splits` = ((name, examples, seed), ...)."""
    from early_exit.data.prepare import prepare_task

    source = {"type": "files", "format": "jsonl"}
    for split, n, seed in splits:
        lines = [json.dumps(ex) for ex in make_examples(n, seed=seed)]
        (root / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
        source[split] = str(root / f"{split}.jsonl")
    prepare_task("tiny", {"source": source, "max_length": max_length}, root / "data", seed=0)
    return root / "data"


# COST-EFF at tiny scale: 2 of 4 heads, factorised embeddings
TINY_SLENDERIZE = {
    "heads": 2,
    "intermediate": None,
    "embedding_rank": 16,
    "heads_per_step": 1,
    "temperature": 2.0,
    "ta": {"init": "backbone", "repr_epochs": 1, "pred_epochs": 1, "learning_rate": 5e-3},
    "prune": {
        "period": 0.5,
        "repr_proportion": 0.5,
        "learning_rate": 2e-3,
        "lr_restore": 0.12,
        "importance_fraction": 0.5,
        "hard_weight": 0.1,
    },
    "distil": {
        "repr_epochs": 0.5,
        "pred_epochs": 1,
        "repr_learning_rate": 3e-3,
        "pred_learning_rate": 2e-3,
    },
}


# The tiny trained runs of the engine and serving tests (tests/inference/conftest.py,
# tests/serving/conftest.py): four epochs, enough for exits that disagree.
RUN_TRAINING = tiny_training(
    epochs=4,
    learning_rate=1e-2,
    weight_decay=0.01,
    warmup_ratio=0.1,
    bucket_batches=2,
    checkpoint_every=1000,
)
