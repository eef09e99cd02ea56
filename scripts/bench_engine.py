"""Benchmark real early exiting on trained runs: measured vs. layer speed-up, engine overhead.

    .venv/bin/python scripts/bench_engine.py results/bbc-news/*/seed13

For each run with exits below the last layer (and a sweep table), at batch sizes 1 and
32, these passes over the same examples are timed in interleaved rounds (every pass once
per round, the order reversed every other round: `early_exit.inference.latency.interleaved`),
so each ratio below is known per round and printed as its median (min-max over rounds):

- the engine at the knob chosen on dev for the method's own criterion against the
  engine at full depth: measured / layer speed-up (targets: >= 0.95 at batch size 1,
  >= 0.9 at 32);
- the engine at full depth against a plain Hugging Face forward pass of the same
  encoder, batched alike and padded beforehand (target at batch size 1: <= 0.8);
- both engines: the run on torch and its ONNX export (made afresh in a scratch directory)
  on ONNX Runtime (`--no-ort` skips it), each with the two ratios above and, for ONNX
  Runtime, its time over the torch engine's at full depth and at the knob;
- diagnostics: every exit head evaluated without exiting (S = 0 never fires) against
  full depth, the mean number of rows per layer call after the batch shrinks, and with
  `--modules` the engine on the encoder's own layer modules (not fused), with
  `--compile MODE` the fused layers compiled by torch.compile, each against the torch
  engine at full depth and at the knob (A/B in the same rounds).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from early_exit.data.prepared import load_split
from early_exit.exits.policies import get_policy
from early_exit.inference.engine import EarlyExitEngine, find_model_dir
from early_exit.inference.latency import device_sync, interleaved
from early_exit.inference.ort_engine import load_export
from early_exit.recipes import get_recipe
from early_exit.training.batching import encode

TARGETS = {1: 0.95, 32: 0.9}  # measured / layer speed-up, per batch size
HF_TARGET = 0.8  # engine at full depth / plain HF forward, at batch size 1


def hf_forward(engine, features, batch_size):
    """A pass of the encoder's own forward (all layers, no exit heads), batched like the
    engine, on batches padded beforehand."""
    order = np.argsort([len(f["input_ids"]) for f in features], kind="stable")
    batches = [
        {k: v.to(engine.device) for k, v in engine.tokenizer.pad(
            [features[i] for i in order[s : s + batch_size]], return_tensors="pt").items()}
        for s in range(0, len(order), batch_size)
    ]  # fmt: skip
    encoder = engine.model.encoder

    def run():
        with torch.inference_mode():
            for batch in batches:
                encoder(**batch)

    return run


def rows_per_layer(engine, features, rule, batch_size) -> float:
    seen = []
    layer = engine.model.stack.layer
    engine.model.stack.layer = lambda i, h, m: seen.append(len(h)) or layer(i, h, m)
    try:
        engine.run(features, rule, batch_size)
    finally:
        engine.model.stack.layer = layer
    return float(np.mean(seen))


def spread(values: np.ndarray) -> str:
    return f"{np.median(values):.2f} ({values.min():.2f}-{values.max():.2f})"


def engine_pass(engine, features, rule, batch_size, decisions=None, key=None):
    def run():
        out = engine.run(features, rule, batch_size)
        if decisions is not None:
            decisions[key] = out

    return run


def verdict(value: float, target: float, at_least: bool) -> str:
    met = value >= target if at_least else value <= target
    return f"({'meets' if met else 'misses'} {'>=' if at_least else '<='} {target})"


def bench_run(run: Path, args) -> None:
    engine = EarlyExitEngine.from_run(run, device=args.device)
    if len(engine.exit_layers) < 2 or not (run / "sweep.tsv").is_file():
        return
    engines = {"torch": engine}
    scratch = tempfile.TemporaryDirectory(prefix="bench-export-")
    if not args.no_ort:
        engines["ort"] = load_export(run, engine, Path(scratch.name), args.device, args.threads)
    if args.modules:
        engines["modules"] = EarlyExitEngine.from_run(run, device=args.device, fused=False)
    if args.compile:
        engines["compiled"] = EarlyExitEngine.from_run(
            run, device=args.device, compile_mode=args.compile
        )
    policy = get_recipe(engine.meta["method"]["recipe"]).criterion
    data_dir = Path(args.data_root) / engine.meta["task"]
    examples = load_split(data_dir, args.split)[: args.examples]
    features = encode(examples, engine.tokenizer, engine.max_length).features
    knob = engine.operating_point(policy)
    rules = {name: e.policy(policy, knob) for name, e in engines.items()}
    every_head = engine.policy(policy, get_policy(policy).never_fires)  # no exit fires
    print(f"\n{run}  ({policy} = {knob:.4g}, {len(features)} {args.split} examples)")
    if engine.unfused_because:
        print(f"  layers not fused: {engine.unfused_because}")
    for batch_size in (1, 32):
        decisions = {}
        passes = {"hf": hf_forward(engine, features, batch_size)}
        for name, e in engines.items():
            passes[f"{name} full"] = engine_pass(e, features, None, batch_size)
            passes[f"{name} knob"] = engine_pass(
                e, features, rules[name], batch_size, decisions, name
            )
        passes["heads"] = engine_pass(engine, features, every_head, batch_size)
        started = time.perf_counter()
        for warm in passes.values():  # every pass once untimed: allocations, compilation
            warm()
        warm_s = time.perf_counter() - started
        s = interleaved(passes, args.repeats, sync=device_sync(engine))
        per_ex = {name: seconds / len(features) * 1e3 for name, seconds in s.items()}
        print(f"  batch {batch_size:>2}: plain HF forward {spread(per_ex['hf'])} ms/ex")
        for name, e in engines.items():
            exits = np.array(e.exit_layers)[decisions[name].exit_index]
            layer_speedup = e.num_layers / exits.mean()
            ratio = s[f"{name} full"] / s[f"{name} knob"] / layer_speedup
            overhead = s[f"{name} full"] / s["hf"]
            hf_check = verdict(np.median(overhead), HF_TARGET, False) if batch_size == 1 else ""
            print(
                f"    {name:>8}: full {spread(per_ex[f'{name} full'])} ms/ex, early exit "
                f"{spread(per_ex[f'{name} knob'])} ms/ex; measured / layer speed-up "
                f"({layer_speedup:.2f}x) {spread(ratio)} "
                f"{verdict(np.median(ratio), TARGETS[batch_size], True)}; full depth / plain "
                f"HF {spread(overhead)} {hf_check}".rstrip()
            )
            if name != "torch":
                full = spread(s[f"{name} full"] / s["torch full"])
                at_knob = spread(s[f"{name} knob"] / s["torch knob"])
                print(f"              / torch engine: full {full}, at the knob {at_knob}")
        rows = rows_per_layer(engine, features, rules["torch"], batch_size)
        print(
            f"    all heads, no exit (torch): {spread(s['heads'] / s['torch full'])}x full; "
            f"rows per layer call {rows:.1f}; warm-up of all passes {warm_s:.1f} s"
        )
    scratch.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--split", default="test")
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-ort", action="store_true", help="skip the ONNX Runtime engine")
    parser.add_argument("--modules", action="store_true", help="also time unfused layers")
    parser.add_argument("--compile", default=None, metavar="MODE", help="also time compiled")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, device {args.device}, {args.repeats} interleaved rounds"
    )
    for run in args.runs:
        find_model_dir(run)
        bench_run(run, args)
    print("\nfull = every layer, last exit only; x (a-b) = median (min-max over rounds)")


if __name__ == "__main__":
    main()
