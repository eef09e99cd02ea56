"""Train the decoder's exit maps (and confidence units) with the backbone frozen.

    PYTHONPATH=src .venv/bin/python scripts/train_decoder_exits.py \
        --out results/decoder/exits --layers 6 12 18 24 --stories 96 --epochs 2

Reads the packaged SmolLM2-135M-Instruct GGUF (or `--model`, a hub id or a folder) and the
BBC News train split as headline chats (`early_exit.decoder.prompts`); writes
`exits.safetensors`, `vocabulary.json` and `training.json` (what it cost) into `--out`
(`early_exit.decoder.training`, the job the workflow's `decoder_exits` rule runs). Bad
input: one line on stderr, exit status 2, nothing written.
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
        from early_exit.decoder.settings import ExitTraining
        from early_exit.decoder.training import train_job

        exits = ExitTraining(
            layers=args.layers,
            stories=args.stories,
            generate=args.generate,
            epochs=args.epochs,
            batch=args.batch,
            learning_rate=args.learning_rate,
        )
        record = train_job(args.model, args.out, exits, args.threads, args.seed)
    except EarlyExitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
