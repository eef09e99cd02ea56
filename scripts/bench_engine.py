"""Benchmark real early exiting on trained runs: measured vs. layer speed-up, engine overhead.

    PYTHONPATH=src .venv/bin/python scripts/bench_engine.py results/bbc-news/*/seed13

For each run with exits below the last layer (and a sweep table): the engine at the
knob chosen on dev for the method's own criterion against the engine at full depth,
at batch size 1 and 32 (targets: measured / layer speed-up >= 0.9 at 1, >= 0.8 at
32); then the engine at full depth against a plain Hugging Face forward pass of the
same encoder (target: overhead <= 1.05). Diagnostics for missed targets: the cost of
evaluating every exit head without exiting (S = 0 never fires), and the mean number
of rows per layer call after the batch shrinks.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

from early_exit.data.prepared import load_split
from early_exit.exits.policies import get_policy
from early_exit.inference.engine import EarlyExitEngine, find_model_dir
from early_exit.inference.latency import FULL, time_setting
from early_exit.recipes import get_recipe
from early_exit.training.batching import encode


def median_ms(engine, features, rule, batch_size, repeats):
    seconds, decisions = time_setting(engine, features, rule, batch_size, 1, repeats)
    return float(np.median(seconds)) / len(features) * 1e3, decisions


def hf_forward_ms(engine, features, batch_size, repeats) -> float:
    """The encoder's own forward (all layers, no exit heads), batched like the engine."""
    order = np.argsort([len(f["input_ids"]) for f in features], kind="stable")
    batches = [
        {k: v.to(engine.device) for k, v in engine.tokenizer.pad(
            [features[i] for i in order[s : s + batch_size]], return_tensors="pt").items()}
        for s in range(0, len(order), batch_size)
    ]  # fmt: skip
    encoder = engine.model.encoder

    def once():
        with torch.inference_mode():
            for batch in batches:
                encoder(**batch)
        if engine.device.type == "cuda":
            torch.cuda.synchronize()

    once()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        once()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) / len(features) * 1e3


def rows_per_layer(engine, features, rule, batch_size) -> float:
    seen = []
    layer = engine.model.stack.layer
    engine.model.stack.layer = lambda i, h, m: seen.append(len(h)) or layer(i, h, m)
    try:
        engine.run(features, rule, batch_size)
    finally:
        engine.model.stack.layer = layer
    return float(np.mean(seen))


def bench_run(run: Path, args) -> None:
    engine = EarlyExitEngine.from_run(run, device=args.device)
    if len(engine.exit_layers) < 2 or not (run / "sweep.tsv").is_file():
        return
    policy = get_recipe(engine.meta["method"]["recipe"]).criterion
    data_dir = Path(args.data_root) / engine.meta["task"]
    examples = load_split(data_dir, args.split)[: args.examples]
    features = encode(examples, engine.tokenizer, engine.max_length).features
    knob = engine.operating_point(policy)
    rule = engine.policy(policy, knob)
    every_head = engine.policy(policy, get_policy(policy).never_fires)  # no exit fires
    num_layers = engine.model.num_layers
    print(f"\n{run}  ({policy} = {knob:.4g}, {len(features)} {args.split} examples)")
    for batch_size in (1, 32):
        full_ms, _ = median_ms(engine, features, None, batch_size, args.repeats)
        ee_ms, decisions = median_ms(engine, features, rule, batch_size, args.repeats)
        heads_ms, _ = median_ms(engine, features, every_head, batch_size, args.repeats)
        layer_speedup = num_layers / np.array(engine.exit_layers)[decisions.exit_index].mean()
        measured = full_ms / ee_ms
        target = 0.9 if batch_size == 1 else 0.8
        ratio = measured / layer_speedup
        rows = rows_per_layer(engine, features, rule, batch_size)
        print(
            f"  batch {batch_size:>2}: full {full_ms:6.2f} ms/ex, early exit {ee_ms:6.2f} ms/ex; "
            f"measured {measured:.2f}x / layer {layer_speedup:.2f}x = {ratio:.2f} "
            f"({'meets' if ratio >= target else 'misses'} >= {target}); "
            f"all heads, no exit: {heads_ms / full_ms:.2f}x full; rows per layer call {rows:.1f}"
        )
        hf_ms = hf_forward_ms(engine, features, batch_size, args.repeats)
        overhead = full_ms / hf_ms
        print(
            f"            engine at full depth / plain HF forward: {full_ms:.2f} / {hf_ms:.2f} "
            f"= {overhead:.3f} ({'meets' if overhead <= 1.05 else 'misses'} <= 1.05)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--split", default="test")
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, device {args.device}"
    )
    for run in args.runs:
        find_model_dir(run)
        bench_run(run, args)
    print(f"\n{FULL} = every layer, last exit only")


if __name__ == "__main__":
    main()
