"""Train the decoder's exit maps (and confidence units) with the backbone frozen.

    PYTHONPATH=src .venv/bin/python scripts/train_decoder_exits.py \
        --out results/decoder/exits --layers 6 12 18 24 --stories 96 --epochs 2

Reads the packaged SmolLM2-135M-Instruct GGUF (or `--model`, a hub id or a folder) and the
BBC News train split as headline chats (`early_exit.decoder.prompts`); writes
`exits.safetensors` and `training.json` (what it cost) into `--out`. Bad input: one line
on stderr, exit status 2, nothing written.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from early_exit.support.errors import EarlyExitError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="packaged:smollm2-135m-instruct")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--layers", type=int, nargs="+", default=[6, 12, 18, 24])
    parser.add_argument("--stories", type=int, default=96, help="train-split stories")
    parser.add_argument(
        "--generate",
        type=int,
        default=0,
        help="train on the prompt and the model's own greedy continuation of this many tokens "
        "(self-distillation on the assistant's turn) instead of the article's real headline",
    )
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        run(args)
    except EarlyExitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def run(args) -> None:
    import platform
    import time

    import transformers

    from early_exit.decoder.decoding import check_int
    from early_exit.decoder.exits import check_layers, save_exits, train_exits
    from early_exit.decoder.loading import load_causal_lm
    from early_exit.decoder.peer import hf_generate
    from early_exit.decoder.prompts import bbc_stories, chat, spread
    from early_exit.decoder.stack import DecoderStack
    from early_exit.support.atomic import write_json

    check_int(args.stories, "--stories", 1)
    check_int(args.epochs, "--epochs", 1)
    check_int(args.generate, "--generate", 0)
    transformers.utils.logging.disable_progress_bar()
    began = time.perf_counter()
    model, tokenizer = load_causal_lm(args.model, threads=args.threads)
    layers = check_layers(args.layers, model.config.num_hidden_layers, "--layers")
    loaded = time.perf_counter() - began
    stack = DecoderStack(model)
    stories = spread(bbc_stories("train", args.seed), args.stories)
    if args.generate:
        prompts = [chat(tokenizer, story) for story in stories]
        sequences = [p + hf_generate(model, p, args.generate).tokens for p in prompts]
    else:
        sequences = [chat(tokenizer, story, answer=True) for story in stories]
    exits, report = train_exits(
        stack, sequences, layers, args.epochs, args.batch, args.learning_rate, args.seed
    )
    meta = {"model": args.model, "stories": len(stories), "epochs": args.epochs}
    meta["generated_tokens"] = args.generate
    save_exits(exits, args.out, meta)
    write_json(
        args.out / "training.json",
        {
            **meta,
            "layers": layers,
            "tokens": report.tokens,
            "steps": report.steps,
            "train_seconds": round(report.seconds, 1),
            "load_seconds": round(loaded, 1),
            "threads": args.threads,
            "kl_before": report.kl_before,
            "kl_after": report.kl_after,
            "top1_agreement_after": report.agreement,
            "machine": f"{platform.machine()} {platform.processor()}, "
            f"{__import__('os').cpu_count()} cores",
            "load_average": __import__("os").getloadavg(),
        },
    )
    print(report)


if __name__ == "__main__":
    sys.exit(main())
