"""Benchmark: the refilling scheduler against full-depth dynamic batching under load.

    PYTHONPATH=src python scripts/bench_serving.py RUN_DIR --policy entropy --threshold X \
        [--rates 0.5 1 2 3 4 6 8] [--requests 400] [--seconds 10] [--texts 256]

Through the real server on 127.0.0.1 (early_exit.serving.stage.Running) with open-loop
Poisson load (early_exit.serving.load): each mode at each rate (multiples of the unloaded
full-depth rate). It reports
- the rate where full depth's p99 first reaches twice its unloaded latency, and there the
  refilling scheduler's sustained throughput over full depth's, against the layer
  speed-up at the knob (target: at least 0.9 of it);
- full depth's saturation rate (the highest rate it sustains: answers >= 95% of offered)
  and the refilling scheduler's p99 there.
The rows are printed as TSV (stdout) and the summary on stderr. docs/serving.md records
the figures with the machine and command.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

from early_exit.data.prepared import load_split
from early_exit.inference.engine import EarlyExitEngine
from early_exit.serving.app import Limits
from early_exit.serving.load import run_load
from early_exit.serving.stage import Running, unloaded_latency
from early_exit.support.layout import parse_run_dir


def main() -> int:
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("run_dir")
    a.add_argument("--policy", default="entropy")
    a.add_argument("--threshold", default="auto")
    a.add_argument("--rates", type=float, nargs="+", default=[0.5, 1, 2, 3, 4, 6, 8])
    a.add_argument("--requests", type=int, default=400)
    a.add_argument("--seconds", type=float, default=10)
    a.add_argument("--texts", type=int, default=256)
    a.add_argument("--max-batch", type=int, default=32)
    a.add_argument("--device", default="cpu")
    args = a.parse_args()
    engine = EarlyExitEngine.from_run(args.run_dir, device=args.device)
    threshold = args.threshold if args.threshold == "auto" else float(args.threshold)
    policy = engine.policy(args.policy, threshold)
    task = parse_run_dir(engine.run_dir.resolve())[0]
    data = engine.run_dir.resolve().parents[2].parent / "data" / task
    texts = [r[engine.fields[0]] for r in load_split(data, "test")[: args.texts]]
    features, _ = engine.encode(texts)
    decisions = engine.run(features, policy)
    speedup = engine.exit_layers[-1] / np.mean(np.array(engine.exit_layers)[decisions.exit_index])
    limits = Limits(max_batch=args.max_batch, max_queue=100_000, max_texts=1, timeout=60)
    with Running(engine, None, "full", limits) as srv:
        unloaded = unloaded_latency(srv.url, texts, 16)
    rows = []
    for mode in ("full", "refill"):
        with Running(engine, None if mode == "full" else policy, mode, limits) as srv:
            run_load(srv.url, texts, 1 / unloaded, 16, 5)  # warm-up
            for m in args.rates:
                rate = m / unloaded
                n = int(min(args.requests, max(16, rate * args.seconds)))
                r = run_load(srv.url, texts, rate, n, args.seconds, 60, seed=int(m * 100))
                rows.append(
                    {
                        "mode": mode,
                        "multiple": m,
                        "rate": rate,
                        "sent": r.sent,
                        "answered": r.answered,
                        "throughput": r.throughput,
                        "p50_ms": 1e3 * r.percentile(50),
                        "p99_ms": 1e3 * r.percentile(99),
                    }
                )
    table = pd.DataFrame(rows)
    table.to_csv(sys.stdout, sep="\t", index=False, float_format="%.4g")
    full = table[table["mode"] == "full"].set_index("multiple")
    refill = table[table["mode"] == "refill"].set_index("multiple")
    doubled = full[full.p99_ms >= 2 * 1e3 * unloaded]
    sustained = full[full.answered >= 0.95 * full.sent]
    say = lambda text: print(text, file=sys.stderr)  # noqa: E731
    say(f"unloaded full-depth latency {1e3 * unloaded:.2f} ms; layer speed-up {speedup:.2f}")
    if not doubled.empty:
        m = doubled.index[0]
        ratio = refill.throughput[m] / full.throughput[m]
        say(
            f"full p99 doubles at {m:g}x ({full.rate[m]:.1f}/s): refill/full throughput "
            f"{ratio:.2f} = {ratio / speedup:.2f} of the layer speed-up (target 0.9)"
        )
    else:
        say("full p99 never doubled its unloaded latency: raise --rates")
    best = refill.throughput.max() / full.throughput.max()
    say(f"highest throughput, refill/full: {best:.2f} = {best / speedup:.2f} of the layer speed-up")
    if not sustained.empty:
        m = sustained.index[-1]
        say(
            f"full depth saturates at {m:g}x ({full.rate[m]:.1f}/s, p99 {full.p99_ms[m]:.1f} ms): "
            f"refill p99 there {refill.p99_ms[m]:.1f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
