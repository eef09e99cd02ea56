"""Benchmark: one training job on every core, or two jobs side by side on half each?

The workflow gives each model job (training, prediction) half the cores of a local run
so that two run at once (`model_threads()` in workflow/rules/common.smk). This measures
why, in one run: the training-step throughput of MiniLM-L6 (PABEE's multi-exit loss,
AdamW, batch 32) with all `--cores` threads in one process, then with two processes of
half the threads each running at the same time, and prints their ratio.

    .venv/bin/python scripts/bench_threads.py [--cores 2] [--seq 48] [--steps 8]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import torch

from early_exit.recipes import RecipeContext
from early_exit.runners.finetune import build_model
from early_exit.training.loop import make_optimizer, train_step
from early_exit.training.settings import TrainingSettings

BACKBONE = {"name": "packaged:minilm-l6", "pooling": "mean"}


def steps_per_second(threads: int, seq: int, steps: int, start=None) -> float:
    """Training steps per second of one process with `threads` threads (2 warm-up steps)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, _, recipe = build_model(BACKBONE, {"recipe": "pabee"}, 5)
    context = RecipeContext("classification", tuple(model.exit_layers))
    settings = TrainingSettings(epochs=1, batch_size=32, learning_rate=1e-4)
    stage = recipe.stages(settings, context)[0]
    optimizer, scheduler = make_optimizer(model, stage, settings, steps + 2)
    batch = {
        "input_ids": torch.randint(1000, 20000, (32, seq)),
        "attention_mask": torch.ones(32, seq, dtype=torch.long),
        "labels": torch.randint(0, 5, (32,)),
    }
    model.train()
    cpu = torch.device("cpu")
    for _ in range(2):
        train_step(model, batch, stage, optimizer, scheduler, settings, cpu)
    if start is not None:  # both processes time the same stretch
        start.wait()
    began = time.perf_counter()
    for _ in range(steps):
        train_step(model, batch, stage, optimizer, scheduler, settings, cpu)
    return steps / (time.perf_counter() - began)


def _worker(threads, seq, steps, start, results):
    results.put(steps_per_second(threads, seq, steps, start))


def side_by_side(threads: int, seq: int, steps: int) -> float:
    """Total steps per second of two processes with `threads` threads each."""
    ctx = mp.get_context("spawn")
    start, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(threads, seq, steps, start, results)) for _ in "ab"]
    for p in procs:
        p.start()
    total = results.get() + results.get()
    for p in procs:
        p.join()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=torch.get_num_threads())
    parser.add_argument("--seq", type=int, default=48)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    half = max(1, args.cores // 2)
    one = steps_per_second(args.cores, args.seq, args.steps)
    two = side_by_side(half, args.seq, args.steps)
    print(f"MiniLM-L6 training, batch 32, length {args.seq}, {args.cores} cores")
    print(f"one job,  {args.cores} threads:      {one:.2f} steps/s")
    print(f"two jobs, {half} thread(s) each: {two:.2f} steps/s together")
    print(f"two side by side / one: {two / one:.2f}")


if __name__ == "__main__":
    main()
