"""Benchmark: one all-exit inference pass vs. sweeping every policy from stored logits.

The point of storing every exit's logits is that threshold sweeps cost next to
nothing compared with inference (the anchors re-run the dev set once per
threshold). This measures both in one run on the same machine and prints their
ratio; the target is <= 0.02.

    .venv/bin/python scripts/bench_sweep.py [--task bbc-news] [--max-length 64]

Uses the packaged MiniLM-L6 with fresh exit heads (inference time does not depend
on training) and the real BBC dev split.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from early_exit.data.prepare import prepare_task
from early_exit.data.prepared import load_split
from early_exit.exits.calibration import calibrate
from early_exit.exits.stored import load_exit_logits
from early_exit.exits.sweep import sweep_stored
from early_exit.inference.predict import all_exit_logits, predict
from early_exit.modeling.checkpoint import load_model_dir, save_model_dir
from early_exit.runners.finetune import build_model
from early_exit.training.batching import Collator, encode

POLICIES = {
    "entropy": {"num_thresholds": 100},
    "patience": {"values": "all"},
    "confidence": {"num_thresholds": 100},
    "oracle": {},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="bbc-news")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifest = prepare_task(args.task, {"max_length": args.max_length}, root / "data", 13)
        model, tokenizer, _ = build_model(
            {"name": "packaged:minilm-l6", "pooling": "mean"},
            {"recipe": "joint"},
            len(manifest["label_names"]),
        )
        save_model_dir(
            root / "model",
            model,
            tokenizer,
            {"label_names": manifest["label_names"], "task": args.task},
        )

        predict(root / "model", root / "data", root / "logits.npz", ["dev"], args.batch_size)
        stored = load_exit_logits(root / "logits.npz")
        model, _, _ = load_model_dir(root / "model")
        data = encode(load_split(root / "data", "dev"), tokenizer, args.max_length)
        collate = Collator(tokenizer, data)

        start = time.perf_counter()
        all_exit_logits(model, collate, data.lengths, args.batch_size, torch.device("cpu"))
        inference = time.perf_counter() - start

        start = time.perf_counter()
        stored["test_logits"], stored["test_labels"] = stored["dev_logits"], stored["dev_labels"]
        temperatures = np.asarray(calibrate(stored)["temperatures"])
        calibration = time.perf_counter() - start

        start = time.perf_counter()
        table = sweep_stored(stored, POLICIES, ["dev"], temperatures)
        sweep = time.perf_counter() - start

    n, exits = stored["dev_logits"].shape[:2]
    print(f"dev examples: {n}, exits: {exits}, threads: {torch.get_num_threads()}")
    print(f"all-exit inference pass over dev:          {inference:8.3f} s")
    print(f"sweep of {len(POLICIES)} policies ({len(table)} rows):       {sweep:8.3f} s")
    print(f"temperature fit (dev and test, every exit): {calibration:8.3f} s")
    print(f"ratio sweep / inference: {sweep / inference:.4f}  (target <= 0.02)")


if __name__ == "__main__":
    main()
