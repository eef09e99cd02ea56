"""Benchmark: token-level early exit on the packaged SmolLM2-135M-Instruct, batch 1, greedy.

Plain greedy (`generate`), the same greedy through our layer walk (no exit passes:
the cost of walking the layers from Python), self-speculative decoding with trained exits
at each `--speculative E:draft`, CALM-style exits at each `--calm threshold`, and
transformers' `assistant_early_exit` at each `--peer E`, on the same BBC News test prompts
("Write a headline for this news story: <lead>" as chat) and lengths, in interleaved
rounds (each round runs every prompt under every method, the method order rotated).

    PYTHONPATH=src .venv/bin/python scripts/bench_decoder.py --exits results/decoder/exits \
        --prompts 4 --new-tokens 32 --rounds 2 --threads 2 \
        --speculative 12:4 18:4 --calm 0.8 --peer 8 --out results/decoder/bench.tsv

Prints, per method: tokens/s (median over rounds, and the range), its ratio to plain
greedy with a 95% bootstrap interval over prompts (per-prompt time ratio, paired in the
round), whether the output equals greedy, acceptance rate and mean draft length
(speculative), mean exit layer, agreement with the full model and perplexity under it
(CALM). Per-run rows go to `--out` (TSV, written atomically). Exit status 2 on bad input.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from early_exit.support.errors import ConfigError, EarlyExitError


def pair(text: str) -> tuple[int, int, int]:
    """`E:draft` or `E:draft:vocab` (the draft scores the `vocab` most frequent tokens of the
    exits' training text; 0 or left out: the full head)."""
    try:
        parts = [int(part) for part in text.split(":")]
        if len(parts) not in (2, 3):
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"E:draft[:vocab], e.g. 12:4:8192, got {text!r}") from None
    return (*parts, 0)[:3]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="packaged:smollm2-135m-instruct")
    parser.add_argument("--exits", required=True, type=Path)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--speculative", type=pair, nargs="*", default=[(12, 4, 0), (18, 4, 0)])
    parser.add_argument("--draft-stop", type=float, default=0.0)
    parser.add_argument("--calm", type=float, nargs="*", default=[0.8])
    parser.add_argument("--peer", type=int, nargs="*", default=[8])
    parser.add_argument("--held-out", type=int, default=8, help="dev stories for perplexity")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        run(args)
    except EarlyExitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def methods(args, model, stack, exits, vocabularies):
    from early_exit.decoder.calm import calm_generate
    from early_exit.decoder.peer import hf_generate
    from early_exit.decoder.speculative import speculative_generate

    n = args.new_tokens
    found = {"greedy": lambda p: hf_generate(model, p, n)}
    found["greedy (our layer walk)"] = lambda p: calm_generate(stack, exits, p, 1.0, n)
    for layer, draft, size in args.speculative:
        vocabulary = vocabularies.get(size)
        label = f"speculative E={layer} k={draft}" + (f" vocab={len(vocabulary)}" if size else "")
        found[label] = lambda p, e=layer, k=draft, v=vocabulary: speculative_generate(
            stack, exits, p, e, k, n, args.draft_stop, v
        )
    for threshold in args.calm:
        found[f"calm t={threshold:g}"] = lambda p, t=threshold: calm_generate(stack, exits, p, t, n)
    for layer in args.peer:
        found[f"peer assistant_early_exit={layer}"] = lambda p, e=layer: hf_generate(
            model, p, n, assistant_early_exit=e
        )
    return found


def run(args) -> None:
    import transformers

    from early_exit.decoder.decoding import check_int
    from early_exit.decoder.exits import held_out_perplexity, load_exits
    from early_exit.decoder.loading import load_causal_lm
    from early_exit.decoder.prompts import bbc_stories, chat, check_prompt, spread
    from early_exit.decoder.speculative import DraftVocabulary
    from early_exit.decoder.stack import DecoderStack
    from early_exit.support.atomic import write_text

    for key in ("prompts", "new_tokens", "rounds"):
        check_int(getattr(args, key), f"--{key.replace('_', '-')}", 1)
    for _, draft, _ in args.speculative:
        check_int(draft, "--speculative draft length", 1, 64)
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    model, tokenizer = load_causal_lm(args.model, threads=args.threads)
    stack = DecoderStack(model)
    config = model.config
    exits, meta = load_exits(args.exits, config.hidden_size, config.num_hidden_layers)
    for layer, _, _ in args.speculative:
        if layer not in exits.layers:
            raise ConfigError(f"--speculative: layer {layer} has no trained exit ({exits.layers})")
    stories = spread(bbc_stories("test", args.seed), args.prompts)
    prompts = [chat(tokenizer, story) for story in stories]
    for story, ids in zip(stories, prompts, strict=True):
        check_prompt(ids, config.max_position_embeddings, args.new_tokens, story.id)
    # the draft vocabularies: the exits' training stories, chosen as the training script does
    train = spread(bbc_stories("train", args.seed), int(meta.get("stories", 32)))
    text = [chat(tokenizer, story, answer=True) for story in train]
    sizes = {size for _, _, size in args.speculative if size}
    vocabularies = {size: DraftVocabulary(stack, text, size) for size in sizes}
    table = methods(args, model, stack, exits, vocabularies)
    if args.held_out:
        dev = [
            chat(tokenizer, s, answer=True)
            for s in spread(bbc_stories("dev", args.seed), args.held_out)
        ]
        perplexity = held_out_perplexity(stack, exits, dev)
        print(
            f"# held-out perplexity ({len(dev)} dev stories as chats, per exit layer; "
            f"{config.num_hidden_layers} = the full model): "
            + ", ".join(f"{k}: {v:.2f}" for k, v in perplexity.items()),
            flush=True,
        )
        if args.out is not None:
            lines = ["layer\tperplexity"] + [f"{k}\t{v:.4f}" for k, v in perplexity.items()]
            write_text(args.out.with_suffix(".perplexity.tsv"), "\n".join(lines) + "\n")
    names = list(table)
    for name in names:  # warm-up: every code path once
        table[name](prompts[0][:16])
    rows = []
    views = {}  # (method, prompt) -> how the full model sees its round-0 output
    for round_ in range(args.rounds):
        for index, prompt in enumerate(prompts):
            shift = (round_ * len(prompts) + index) % len(names)
            for name in names[shift:] + names[:shift]:
                began = time.perf_counter()
                out = table[name](prompt)
                seconds = time.perf_counter() - began
                rows.append(
                    {
                        "round": round_,
                        "prompt": stories[index].id,
                        "method": name,
                        "tokens": len(out.tokens),
                        "seconds": seconds,
                        "output": " ".join(map(str, out.tokens)),
                        **out.stats,
                    }
                )
                print(
                    f"round {round_} {stories[index].id} {name}: {len(out.tokens)} tokens "
                    f"in {seconds:.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
        summarise(args, rows, names, stories, prompts, stack, meta, views)


def summarise(args, rows, names, stories, prompts, stack, meta, views) -> None:
    """Print the table of the rounds so far and write both TSVs (after every round, so an
    interrupted benchmark keeps what it measured)."""
    import numpy as np
    import pandas as pd
    import torch
    import transformers
    from scipy.stats import bootstrap

    from early_exit.decoder.calm import full_model_view
    from early_exit.support.atomic import atomic_path

    frame = pd.DataFrame(rows)
    greedy = frame[frame.method == "greedy"].set_index(["round", "prompt"])
    frame["equals_greedy"] = [
        row.output == greedy.loc[(row.round, row.prompt), "output"] for row in frame.itertuples()
    ]
    frame["time_ratio"] = [  # greedy's seconds / the method's, same round and prompt
        greedy.loc[(row.round, row.prompt), "seconds"] / row.seconds for row in frame.itertuples()
    ]
    calm = frame.method.str.startswith("calm")
    for position in frame.index[calm & (frame["round"] == 0)]:  # deterministic: same each round
        row = frame.loc[position]
        if (row.method, row.prompt) not in views:
            prompt = prompts[[s.id for s in stories].index(row.prompt)]
            tokens = [int(t) for t in row.output.split()]
            views[(row.method, row.prompt)] = full_model_view(stack, prompt, tokens)
        for key, value in views[(row.method, row.prompt)].items():
            frame.loc[(frame.method == row.method) & (frame.prompt == row.prompt), key] = value
    summary = []
    for name in names:
        part = frame[frame.method == name]
        per_round = part.groupby("round").tokens.sum() / part.groupby("round").seconds.sum()
        ratio = part.groupby("prompt").time_ratio.mean().to_numpy()
        low = high = float("nan")
        if len(ratio) > 1 and np.ptp(ratio) > 0:
            ci = bootstrap(
                (ratio,),
                np.mean,
                n_resamples=2000,
                confidence_level=0.95,
                method="percentile",
                random_state=args.seed,
            ).confidence_interval
            low, high = ci.low, ci.high
        line = {
            "method": name,
            "tokens_per_s": per_round.median(),
            "tokens_per_s_min": per_round.min(),
            "tokens_per_s_max": per_round.max(),
            "speed_vs_greedy": ratio.mean(),
            "ci_low": low,
            "ci_high": high,
            "equals_greedy": part.equals_greedy.mean(),
        }
        if "acceptance" in part and part.acceptance.notna().any():
            line["acceptance"] = part.accepted.sum() / part.drafted.sum()
            line["mean_draft"] = part.drafted.sum() / part.rounds.sum()
        if "mean_exit_layer" in part and name.startswith("calm"):
            line["mean_exit_layer"] = part.mean_exit_layer.mean()
            line["full_model_agreement"] = part.full_model_agreement.mean()
            line["perplexity"] = part.perplexity.mean()
        summary.append(line)
    summary = pd.DataFrame(summary)
    print(
        f"# {len(prompts)} prompts x {args.new_tokens} new tokens, {args.rounds} rounds, "
        f"{args.threads} threads, torch {torch.__version__}, transformers "
        f"{transformers.__version__}, exits {meta}, load average {os.getloadavg()}"
    )
    print(summary.to_markdown(index=False, floatfmt=".3g"))
    if args.out is not None:
        with atomic_path(args.out) as tmp:
            frame.to_csv(tmp, sep="\t", index=False)
        with atomic_path(args.out.with_suffix(".summary.tsv")) as tmp:
            summary.to_csv(tmp, sep="\t", index=False)


if __name__ == "__main__":
    sys.exit(main())
