"""Benchmark: token-level early exit on the packaged SmolLM2-135M-Instruct, batch 1, greedy.

Plain greedy (`generate`), the same greedy through our layer walk (no exit passes:
the cost of walking the layers from Python), self-speculative decoding with trained exits
at each `--speculative E:draft`, CALM-style exits at each `--calm threshold`, and
transformers' `assistant_early_exit` at each `--peer E`, on the same BBC News test prompts
("Write a headline for this news story: <lead>" as chat) and lengths, in interleaved
rounds (`early_exit.decoder.benchmark`, which the workflow's `decoder_benchmark` rule runs
at the knobs its sweeps chose).

    PYTHONPATH=src .venv/bin/python scripts/bench_decoder.py --exits results/decoder/exits \
        --prompts 4 --new-tokens 32 --rounds 2 --threads 2 \
        --speculative 12:4 18:4 --calm 0.8 --peer 8 --out results/decoder/bench.tsv

Prints, per method, each figure with a 95% bootstrap interval over prompts: tokens/s, speed
against plain greedy (per-prompt time ratio, paired in the round), whether the output
equals greedy, acceptance rate and tokens per verification (speculative), mean exit layer
(CALM), agreement with the full model and perplexity under it. Per-run rows go to `--out`,
the summary to `*.summary.tsv`, the held-out perplexity per exit to `*.perplexity.tsv`
(TSV, written atomically). Exit status 2 on bad input.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from early_exit.support.errors import EarlyExitError


def pair(text: str) -> tuple[int, int]:
    """`E:draft`."""
    try:
        parts = [int(part) for part in text.split(":")]
        if len(parts) != 2:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"E:draft, e.g. 12:4, got {text!r}") from None
    return parts[0], parts[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="packaged:smollm2-135m-instruct")
    parser.add_argument("--exits", required=True, type=Path)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--speculative", type=pair, nargs="*", default=[(12, 4), (18, 4)])
    parser.add_argument(
        "--draft-vocab",
        type=int,
        default=0,
        help="the draft scores the N most frequent "
        "tokens of the exits' training text (0: the full head)",
    )
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


def run(args) -> None:
    import torch
    import transformers

    from early_exit.decoder import stage
    from early_exit.decoder.benchmark import build_methods, full_model_views, run_rounds, summarise
    from early_exit.decoder.decoding import check_int
    from early_exit.decoder.settings import DecoderSettings
    from early_exit.decoder.stored import per_text_nll, perplexity_table
    from early_exit.support.errors import ConfigError
    from early_exit.support.tables import write_table

    for key in ("prompts", "new_tokens", "rounds", "draft_vocab"):
        check_int(
            getattr(args, key), f"--{key.replace('_', '-')}", 0 if key == "draft_vocab" else 1
        )
    for _, draft in args.speculative:
        check_int(draft, "--speculative draft length", 1, 64)
    settings = DecoderSettings(
        model=args.model,
        threads=args.threads,
        seed=args.seed,
        prompts=args.prompts,
        new_tokens=args.new_tokens,
        held_out=args.held_out,
        draft_vocab=args.draft_vocab,
    )
    loaded, tokenizer = stage.load(settings, args.exits)
    for layer, _ in args.speculative:
        if layer not in loaded.exits.layers:
            raise ConfigError(
                f"--speculative: layer {layer} has no trained exit ({loaded.exits.layers})"
            )
    prompts = stage.test_prompts(settings, tokenizer, loaded.model.config.max_position_embeddings)
    if args.held_out:
        nll = per_text_nll(loaded.stack, loaded.exits, stage.held_out_texts(settings, tokenizer))
        perplexity = perplexity_table(nll, **stage.boot(settings))
        print(perplexity.to_markdown(index=False, floatfmt=".4g"), flush=True)
        if args.out is not None:
            write_table(perplexity, args.out.with_suffix(".perplexity.tsv"))
    methods = build_methods(
        loaded.model,
        loaded.stack,
        loaded.exits,
        args.new_tokens,
        args.speculative,
        args.calm,
        args.peer,
        loaded.vocabulary,
    )
    logging.getLogger("early_exit.decoder.benchmark").setLevel(logging.INFO)
    frame = run_rounds(methods, prompts, args.rounds)
    views = full_model_views(loaded.stack, frame, prompts)
    summary = summarise(frame, methods, views, stage.boot(settings), loaded.stack.num_layers)
    print(
        f"# {len(prompts)} prompts x {args.new_tokens} new tokens, {args.rounds} rounds, "
        f"{args.threads} threads, torch {torch.__version__}, transformers "
        f"{transformers.__version__}, load average {os.getloadavg()}"
    )
    print(summary.to_markdown(index=False, floatfmt=".3g"))
    if args.out is not None:
        write_table(frame, args.out)
        write_table(summary, args.out.with_suffix(".summary.tsv"))


if __name__ == "__main__":
    sys.exit(main())
