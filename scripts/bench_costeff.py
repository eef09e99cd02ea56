"""Benchmark: a slenderized (COST-EFF) model against its unpruned twin, at full depth.

Builds the unpruned multi-exit model of the same architecture (the TA's shapes: every
layer's full width, the same exits and heads; weights do not change the timing) next
to a trained `costeff` model directory, and reports for both: parameters, FLOPs per
example at the dev set's real lengths (torch's FLOP counter on each model), and the
median wall-clock time of a full-depth forward pass at batch size 1 over the dev set,
the two models interleaved example by example so machine load affects both alike.

    .venv/bin/python scripts/bench_costeff.py results/bbc-news/costeff/seed13/model \
        data/bbc-news [--examples 100] [--threads 1]

Until the latency stage (issue 10) times every model, this is where the slenderized
model's latency is measured.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from transformers import AutoConfig, AutoModel

from early_exit.data.prepared import load_manifest, load_split
from early_exit.modeling.checkpoint import load_model_dir
from early_exit.modeling.flops import per_example_flops
from early_exit.modeling.model import ExitConfig, MultiExitModel
from early_exit.modeling.pruning import SHAPES_KEY, layer_shapes, num_parameters
from early_exit.training.batching import Collator, encode


def unpruned_twin(model_dir) -> MultiExitModel:
    config = AutoConfig.from_pretrained(model_dir)
    if hasattr(config, SHAPES_KEY):
        delattr(config, SHAPES_KEY)
    slim, _, _ = load_model_dir(model_dir)
    return MultiExitModel(AutoModel.from_config(config), ExitConfig(**slim.cfg.to_dict()))


@torch.no_grad()
def interleaved_latency(models: dict, batches: list[dict], repeats: int) -> dict[str, float]:
    times = {name: [] for name in models}
    for batch in batches:
        for name, model in models.items():
            model(**batch)  # warm
            start = time.perf_counter()
            for _ in range(repeats):
                model(**batch)
            times[name].append((time.perf_counter() - start) / repeats)
    return {name: float(np.median(t)) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("data_dir")
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    slim, tokenizer, _ = load_model_dir(args.model_dir)
    models = {"slenderized": slim.eval(), "unpruned": unpruned_twin(args.model_dir).eval()}
    manifest = load_manifest(args.data_dir)
    data = encode(load_split(args.data_dir, "dev"), tokenizer, manifest["max_length"])
    collate = Collator(tokenizer, data)
    picked = np.arange(min(args.examples, len(data)))
    batches = [{k: v for k, v in collate(np.array([i])).items() if k != "labels"} for i in picked]
    latency = interleaved_latency(models, batches, args.repeats)
    print(f"shapes: {layer_shapes(slim.encoder)}")
    print(f"{len(picked)} dev examples, batch size 1, {args.threads} thread(s), full depth")
    rows = {}
    for name, model in models.items():
        flops = per_example_flops(model, data.lengths)[:, -1].mean()
        rows[name] = (num_parameters(model), flops, latency[name])
        print(
            f"{name:12s} parameters {rows[name][0]:>11,d}  GFLOPs/example {flops / 1e9:.4f}  "
            f"median latency {latency[name] * 1e3:.2f} ms"
        )
    (p1, f1, t1), (p0, f0, t0) = rows["slenderized"], rows["unpruned"]
    print(
        f"ratios slenderized / unpruned: parameters {p1 / p0:.3f}  FLOPs {f1 / f0:.3f}  "
        f"latency {t1 / t0:.3f}"
    )


if __name__ == "__main__":
    main()
