"""One inference pass that stores per-token exit outputs (the decoder's `exit_logits.npz`).

For each benchmark prompt: the full model's greedy continuation (transformers' `generate`,
the reference every method is compared with), then one teacher-forced pass over the prompt
and that continuation, reading every trained exit at every generated position: the exit's
top-1 token (full head), whether it is the greedy token, its confidence unit's value, and
the draft's top-1 (within the draft vocabulary when there is one). Row `index` i holds what
the exits say at the position that predicts greedy token i, given the prompt and greedy
tokens 0..i-1 (row 0: the prompt's last position, where every method runs the full model).

From these rows the knob sweeps (`early_exit.decoder.simulate`) need no model: a draft is
only accepted when every earlier draft of its round was, so its context is the greedy
prefix, which is exactly what was stored; a CALM token's exit is decided by the confidences
along the greedy prefix as long as the cache below holds what the full model computes
(the check in `early_exit.decoder.benchmark` states where that holds).

Files (`results/decoder/outputs/`): `tokens.tsv` (one row per prompt and generated token,
columns per exit layer), `perplexity.tsv` (held-out perplexity per exit with a bootstrap
interval over texts), `meta.json` (layers, lengths, end tokens, the cost model's sizes).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from torch.nn import functional as F

from early_exit.decoder.decoding import end_tokens
from early_exit.decoder.stats import exp_interval
from early_exit.support.atomic import atomic_path, write_json
from early_exit.support.errors import DataError

TOKENS = "tokens.tsv"
PERPLEXITY = "perplexity.tsv"
META = "meta.json"


def model_sizes(config, draft_vocab: int = 0) -> dict[str, int]:
    """Multiply-adds per token of each part the methods run (the cost model's units):
    one decoder layer, the head, an exit map, a confidence unit, the key and value
    projections a skipped layer runs under CALM's propagation, and the draft's head."""
    hidden = config.hidden_size
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    kv = (getattr(config, "num_key_value_heads", None) or heads) * head_dim
    attention = 2 * hidden * heads * head_dim + 2 * hidden * kv
    mlp = 3 * hidden * config.intermediate_size
    vocab = config.vocab_size
    return {
        "layer": attention + mlp,
        "head": vocab * hidden,
        "map": hidden * hidden + hidden,
        "confidence": hidden + 1,
        "kv": 2 * hidden * kv,
        "draft_head": (draft_vocab or vocab) * hidden,
        "num_layers": config.num_hidden_layers,
        "vocab": vocab,
    }


@torch.no_grad()
def teacher_forced(stack, exits, prompt: list[int], tokens: list[int], vocabulary=None):
    """The exits' readings along `prompt + tokens` at the positions predicting `tokens`."""
    ids = torch.tensor([prompt + tokens])
    rows = slice(len(prompt) - 1, len(prompt) - 1 + len(tokens))
    hidden = stack.embed(ids)
    cache = stack.new_cache()
    where = stack.positions(hidden, 0)
    states = {}
    for index in range(stack.num_layers):
        hidden = stack.run(hidden, index, index + 1, cache, 0, where)
        if index + 1 in exits.layers:
            states[index + 1] = hidden[0, rows]
    frame = {
        "index": list(range(len(tokens))),
        "token": tokens,
        "final_top1": stack.logits(hidden[0, rows]).argmax(-1).tolist(),
    }
    target = torch.tensor(tokens)
    for layer in exits.layers:
        mapped = exits.mapped(layer, states[layer])
        top1 = stack.logits(mapped).argmax(-1)
        frame[f"top1_{layer}"] = top1.tolist()
        frame[f"agree_{layer}"] = (top1 == target).int().tolist()
        frame[f"confidence_{layer}"] = exits.score(layer, mapped).tolist()
        draft = top1 if vocabulary is None else vocabulary.tops(mapped)
        frame[f"draft_{layer}"] = draft.tolist()
    return pd.DataFrame(frame)


def store_outputs(
    model, stack, exits, prompts: dict[str, list[int]], new_tokens: int, vocabulary=None
):
    """Greedy continuations and the exits' per-token readings along them, for every prompt."""
    from early_exit.decoder.peer import hf_generate

    parts = []
    for name, prompt in prompts.items():
        greedy = hf_generate(model, prompt, new_tokens).tokens
        part = teacher_forced(stack, exits, prompt, greedy, vocabulary)
        part.insert(0, "prompt", name)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


@torch.no_grad()
def per_text_nll(stack, exits, sequences: list[list[int]]) -> pd.DataFrame:
    """Summed next-token negative log-likelihood of each text read through each exit and
    through the last layer (layer `stack.num_layers`), teacher-forced."""
    from early_exit.decoder.exits import collect

    rows = []
    for text, ids in enumerate(sequences):
        if len(ids) < 2:
            continue
        states = collect(stack, [ids], exits.layers)
        target = torch.tensor(ids[1:])
        for layer in [*exits.layers, stack.num_layers]:
            hidden = states[layer][:-1]
            if layer != stack.num_layers:
                hidden = exits.mapped(layer, hidden)
            nll = F.cross_entropy(stack.logits(hidden), target, reduction="sum")
            rows.append({"text": text, "layer": layer, "nll": float(nll), "tokens": len(ids) - 1})
    if not rows:
        raise DataError("decoder held-out perplexity: no text of two tokens or more")
    return pd.DataFrame(rows)


def perplexity_table(nll: pd.DataFrame, resamples=2000, confidence=0.95, seed=0) -> pd.DataFrame:
    """Perplexity per layer (exp of the mean NLL per token) with a bootstrap interval over
    texts (the same resampled texts for every layer: one seed)."""
    rows = []
    for layer, part in nll.groupby("layer", sort=True):
        value, low, high = exp_interval(part.nll, part.tokens, resamples, confidence, seed)
        rows.append(
            {
                "layer": int(layer),
                "perplexity": value,
                "ci_low": low,
                "ci_high": high,
                "texts": len(part),
                "tokens": int(part.tokens.sum()),
            }
        )
    return pd.DataFrame(rows)


def write_outputs(out_dir, tokens: pd.DataFrame, perplexity: pd.DataFrame, meta: dict) -> None:
    out_dir = Path(out_dir)
    for name, frame in ((TOKENS, tokens), (PERPLEXITY, perplexity)):
        with atomic_path(out_dir / name) as tmp:
            frame.to_csv(tmp, sep="\t", index=False)
    write_json(out_dir / META, meta)


def outputs_meta(model, exits, new_tokens: int, draft_vocab: int, extra: dict | None = None):
    return {
        "layers": exits.layers,
        "num_layers": model.config.num_hidden_layers,
        "new_tokens": new_tokens,
        "end_tokens": sorted(end_tokens(model)),
        "draft_vocab": draft_vocab,
        "sizes": model_sizes(model.config, draft_vocab),
        **(extra or {}),
    }


def load_outputs(out_dir) -> tuple[pd.DataFrame, dict]:
    """`tokens.tsv` and `meta.json` of an inference pass, or one DataError naming the file."""
    import json

    out_dir = Path(out_dir)
    try:
        meta = json.loads((out_dir / META).read_text(encoding="utf-8"))
        tokens = pd.read_csv(out_dir / TOKENS, sep="\t", dtype={"prompt": str})
    except (OSError, ValueError) as err:
        raise DataError(
            f"{out_dir}: cannot read the stored decoder outputs ({err}); rerun rule decoder_outputs"
        ) from None
    needed = {"prompt", "index", "token"} | {
        f"{kind}_{layer}"
        for layer in meta.get("layers", [])
        for kind in ("top1", "confidence", "draft")
    }
    missing = sorted(needed - set(tokens.columns))
    if missing:
        raise DataError(
            f"{out_dir / TOKENS}: lacks columns {', '.join(missing)}; rerun rule decoder_outputs"
        )
    return tokens, meta
