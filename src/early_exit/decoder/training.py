"""Train the exits of a causal LM and record what it cost: the job behind
`scripts/train_decoder_exits.py` and the workflow's `decoder_exits` rule.

The text: BBC News train-split stories as headline chats (`early_exit.decoder.prompts`),
either with the article's real headline as the answer or, with `generate > 0`,
self-distilled: the prompt and the model's own greedy continuation of `generate` tokens
(the assistant's turn the exits will run on; the best variant so far, docs/decoder.md).
The backbone is frozen (`early_exit.decoder.exits.train_exits`).
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from early_exit.decoder.decoding import check_int
from early_exit.decoder.exits import check_layers, save_exits, train_exits
from early_exit.decoder.settings import ExitTraining
from early_exit.support.atomic import write_json

VOCABULARY = "vocabulary.json"


def training_sequences(model, tokenizer, stories, generate: int) -> list[list[int]]:
    """The exits' training text: chats with the real headline, or self-distilled."""
    from early_exit.decoder.peer import hf_generate
    from early_exit.decoder.prompts import chat

    if generate:
        prompts = [chat(tokenizer, story) for story in stories]
        return [p + hf_generate(model, p, generate).tokens for p in prompts]
    return [chat(tokenizer, story, answer=True) for story in stories]


def train_and_save(
    model,
    tokenizer,
    stories,
    out: str | Path,
    layers: list[int],
    generate: int = 0,
    epochs: int = 1,
    batch: int = 128,
    learning_rate: float = 1e-3,
    seed: int = 13,
    meta: dict | None = None,
    extra: dict | None = None,
) -> dict:
    """Train exits at `layers` on `stories`; write `exits.safetensors` and `training.json`
    into `out` (atomically, only once training succeeded), and the training text's token
    ids by frequency (`vocabulary.json`, the draft vocabulary); return the training record.
    `meta` goes into the exits file's header, `extra` only into the record."""
    from early_exit.decoder.stack import DecoderStack

    check_int(generate, "decoder exits generate", 0)
    check_int(epochs, "decoder exits epochs", 1)
    layers = check_layers(layers, model.config.num_hidden_layers, "decoder exits layers")
    began = time.perf_counter()
    stack = DecoderStack(model)
    sequences = training_sequences(model, tokenizer, stories, generate)
    generated = time.perf_counter() - began
    exits, report = train_exits(stack, sequences, layers, epochs, batch, learning_rate, seed)
    meta = {**(meta or {}), "stories": len(stories), "epochs": epochs, "generated_tokens": generate}
    out = Path(out)
    save_exits(exits, out, meta)
    write_json(out / VOCABULARY, ranked_tokens(sequences))
    record = {
        **meta,
        **(extra or {}),
        "layers": layers,
        "num_layers": model.config.num_hidden_layers,
        "tokens": report.tokens,
        "steps": report.steps,
        "text_seconds": round(generated, 1),
        "train_seconds": round(report.seconds, 1),
        "kl_before": report.kl_before,
        "kl_after": report.kl_after,
        "top1_agreement_after": report.agreement,
        "machine": f"{platform.machine()} {platform.processor()}, {os.cpu_count()} cores",
        "load_average": os.getloadavg(),
    }
    write_json(out / "training.json", record)
    return record


def ranked_tokens(sequences: list[list[int]]) -> list[int]:
    """The distinct token ids of `sequences`, most frequent first (ties: smaller id first)."""
    counts: dict[int, int] = {}
    for ids in sequences:
        for token in ids:
            counts[token] = counts.get(token, 0) + 1
    return sorted(counts, key=lambda t: (-counts[t], t))


def train_job(
    model_name: str,
    out: str | Path,
    exits: ExitTraining,
    threads: int,
    seed: int,
    saved: str | Path | None = None,
) -> dict:
    """Load the model (from `saved`, the workflow's plain copy of `model_name`, when given),
    pick `exits.stories` train-split stories (spread over the topics), train."""

    from early_exit.decoder.loading import load_model
    from early_exit.decoder.prompts import bbc_stories, spread

    check_int(exits.stories, "decoder exits stories", 1)
    began = time.perf_counter()
    model, tokenizer = load_model(model_name, threads, saved)
    loaded = time.perf_counter() - began
    chosen = spread(bbc_stories("train", seed), exits.stories)
    extra = {"threads": threads, "load_seconds": round(loaded, 1)}
    return train_and_save(
        model,
        tokenizer,
        chosen,
        out,
        exits.layers,
        exits.generate,
        exits.epochs,
        exits.batch,
        exits.learning_rate,
        seed,
        {"model": model_name},
        extra,
    )
