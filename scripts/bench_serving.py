"""Benchmark: capacity under a latency objective per serving mode, and latency at equal load.

    PYTHONPATH=src python scripts/bench_serving.py RUN_DIR --policy entropy --threshold auto \
        [--repeats 3] [--seconds 4] [--slo-multiple 5] [--modes full shrink refill] \
        [--texts 256] [--max-batch 32] [--out points.tsv]

Through the real server on 127.0.0.1 (early_exit.serving.under_load.Running), offered open-loop
Poisson arrivals by the load generator in its own process (early_exit.serving.load): the
same arrival sequence for every mode at a rate, latency from the scheduled arrival,
rejected and timed-out requests as infinite latency.

- The SLO: `--slo-multiple` times the unloaded full-depth batch-1 *model* time (the
  engine, timed directly; not HTTP time).
- Capacity of a mode: the highest arrival rate whose p99 (failures included) is within
  the SLO. Searched on a geometric ladder of rates (x1.25) from the previous round's
  capacity of that mode (or half the unloaded model rate) up to the first miss (or down
  to the first pass), then bisected twice between the last pass and the first miss
  (about 6% resolution). Each point offers at least `--min-requests` requests.
- Repeats: `--repeats` rounds (at least 3), each measuring every mode (in a rotating
  order), so each capacity has a median and a [min, max] range over rounds (for 3
  rounds, [min, max] covers the median of the rounds' distribution with probability
  0.75), and each ratio (refill/full, shrink/full) is paired within a round.
- Equal offered load: in each round, every mode at 50% and 80% of full depth's capacity
  in that round (paired arrivals), p50 and p99 with the samples behind them and a 95%
  order-statistic interval, and the rows per layer call (refill) or batch.
- The TCP check: the no-op round trip (GET /health) with an httpx keep-alive client
  against curl's (-w time_total), medians.

Every point is printed (TSV, stdout or --out) and the summary goes to stderr. Timings on
a shared machine are noisy: the load average is printed before and after.
docs/serving.md records the figures with the machine and command.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import time

import httpx
import numpy as np
import pandas as pd

from early_exit.data.prepared import load_split
from early_exit.inference.engine import EarlyExitEngine
from early_exit.serving.limits import Limits
from early_exit.serving.load import Generator, paired_seed, run_load
from early_exit.serving.scheduler import Admission
from early_exit.serving.under_load import Running, calls_between, model_time, rows_per_call
from early_exit.support.layout import data_dir


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def round_trips(url: str, n: int = 40) -> tuple[float, float]:
    """Median seconds of GET /health: httpx on one keep-alive connection, and curl."""
    with httpx.Client(base_url=url) as client:
        client.get("/health")
        keep = []
        for _ in range(n):
            start = time.perf_counter()
            client.get("/health")
            keep.append(time.perf_counter() - start)
    curl = []
    for _ in range(max(5, n // 4)):
        out = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{time_total}", f"{url}/health"],
            capture_output=True,
            text=True,
            check=True,
        )
        curl.append(float(out.stdout))
    return float(np.median(keep)), float(np.median(curl))


class Bench:
    def __init__(self, engine, policy, texts, limits, seconds, slo, gen, min_requests, max_seconds):
        self.engine, self.policy, self.texts = engine, policy, texts
        self.min_requests, self.max_seconds = min_requests, max_seconds
        self.limits, self.seconds, self.slo, self.gen = limits, seconds, slo, gen
        self.points: list[dict] = []

    def measure(self, srv, mode: str, rate: float, what: str, rnd: int) -> dict:
        # enough samples for a p99, within a bound on the point's time
        seconds = min(max(self.seconds, self.min_requests / rate), self.max_seconds)
        before = rows_per_call(srv.url)
        load = run_load(
            srv.url,
            self.texts,
            rate,
            int(rate * seconds * 1.5) + 10,
            seconds,
            self.limits.timeout + 1,
            seed=paired_seed(rate, base=rnd),
            generator=self.gen,
        )
        calls = calls_between(before, rows_per_call(srv.url))
        p50, p50_lo, p50_hi, _ = load.interval(50)
        p99, p99_lo, p99_hi, _ = load.interval(99)
        row = {
            "round": rnd,
            "what": what,
            "mode": mode,
            "rate": rate,
            "sent": load.sent,
            "failed": load.failed,
            "throughput": load.throughput,
            "p50_ms": 1e3 * p50,
            "p50_low_ms": 1e3 * p50_lo,
            "p50_high_ms": 1e3 * p50_hi,
            "p99_ms": 1e3 * p99,
            "p99_low_ms": 1e3 * p99_lo,
            "p99_high_ms": 1e3 * p99_hi,
            "send_lag_p99_ms": 1e3 * float(np.nanquantile(load.lag, 0.99)) if load.sent else 0,
            "calls": calls.size,
            "rows_per_call": calls.mean() if calls.size else np.nan,
            **{
                f"rows_p{q}": np.percentile(calls, q) if calls.size else np.nan
                for q in (10, 50, 90)
            },
            "within_slo": bool(p99 <= self.slo),
        }
        self.points.append(row)
        say(
            f"  round {rnd} {mode} {what} {rate:.1f}/s: {load.sent} sent, {load.failed} failed, "
            f"p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms, rows/call "
            f"{row['rows_per_call']:.1f}"
        )
        return row

    def capacity(self, srv, mode: str, start: float, rnd: int) -> float:
        """The highest rate whose p99 is within the SLO: from `start`, up the ladder
        (x1.25) to the first miss, or down it to the first pass, then bisected twice
        between the last pass and the first miss. 0 if even start / 1.25^6 misses."""
        ok = self.measure(srv, mode, start, "capacity", rnd)["within_slo"]
        passed, missed = (start, None) if ok else (None, start)
        for _ in range(40):  # bounded: 1.25^40
            if passed is not None and missed is not None:
                break
            if passed is not None:
                rate = passed * 1.25
                if self.measure(srv, mode, rate, "capacity", rnd)["within_slo"]:
                    passed = rate
                else:
                    missed = rate
            else:
                rate = missed / 1.25
                if rate < start / 1.25**6:
                    return 0.0
                if self.measure(srv, mode, rate, "capacity", rnd)["within_slo"]:
                    passed = rate
                else:
                    missed = rate
        for _ in range(2):
            mid = (passed + missed) / 2
            if self.measure(srv, mode, mid, "capacity", rnd)["within_slo"]:
                passed = mid
            else:
                missed = mid
        return passed


def serve(engine, policy, name: str, limits: Limits) -> Running:
    """A server of mode `name` ("refill:bulk": refill with Admission.bulk)."""
    mode, _, variant = name.partition(":")
    if variant == "bulk":
        limits = dataclasses.replace(limits, admission=Admission.bulk(limits.max_batch))
    elif variant:
        raise SystemExit(f"--modes {name}: unknown variant {variant!r} (bulk)")
    return Running(engine, None if mode == "full" else policy, mode, limits)


def spread(values) -> str:
    v = np.asarray(values, float)
    return f"{np.median(v):.3g} [{v.min():.3g}, {v.max():.3g}]"


def main() -> int:
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("run_dir")
    a.add_argument("--policy", default="entropy")
    a.add_argument("--threshold", default="auto")
    a.add_argument(
        "--modes",
        nargs="+",
        default=["full", "shrink", "refill", "refill:bulk"],
        help="full, shrink, refill (eager admission, shallowest first) or refill:bulk "
        "(early_exit.serving.scheduler.Admission.bulk)",
    )
    a.add_argument("--repeats", type=int, default=3)
    a.add_argument("--seconds", type=float, default=4.0, help="arrivals per point, at least")
    a.add_argument("--min-requests", type=int, default=200, help="per point, at least ...")
    a.add_argument("--max-seconds", type=float, default=10.0, help="... unless that takes longer")
    a.add_argument("--slo-multiple", type=float, default=5.0)
    a.add_argument("--texts", type=int, default=256)
    a.add_argument("--max-batch", type=int, default=32)
    a.add_argument("--max-wait", type=int, default=4)
    a.add_argument("--threads", type=int, default=None)
    a.add_argument("--device", default="cpu")
    a.add_argument("--out", default=None, help="TSV of every point (default: stdout)")
    args = a.parse_args()
    if args.repeats < 3 or "full" not in args.modes:
        a.error("--repeats must be at least 3 and --modes must include full")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    say(f"load average before: {os.getloadavg()}")
    engine = EarlyExitEngine.from_run(args.run_dir, device=args.device)
    if args.threshold == "auto":
        threshold = engine.operating_point(args.policy)
    else:
        threshold = float(args.threshold)
    policy = engine.policy(args.policy, threshold)
    data = data_dir(engine.run_dir)
    texts = [r[engine.fields[0]] for r in load_split(data, "test")[: args.texts]]
    features, _ = engine.encode(texts)
    decisions = engine.run(features, policy)
    layers = np.array(engine.exit_layers)
    speedup = layers[-1] / np.mean(layers[decisions.exit_index])
    model = model_time(engine, texts, n=30)
    slo = args.slo_multiple * model
    limits = Limits(
        max_batch=args.max_batch,
        max_queue=100_000,
        max_texts=1,
        timeout=max(1.0, 10 * slo),
        max_wait=args.max_wait,
    )
    say(
        f"{engine.run_dir}: {args.policy} at {threshold:g}, "
        f"layer speed-up {speedup:.2f} on {len(texts)} test texts; full-depth batch-1 model "
        f"time {1e3 * model:.2f} ms; SLO p99 <= {1e3 * slo:.1f} ms ({args.slo_multiple:g}x)"
    )
    with Running(engine, None, "full", limits) as srv:
        keep, curl = round_trips(srv.url)
    say(
        f"no-op round trip (GET /health): httpx keep-alive {1e3 * keep:.2f} ms, "
        f"curl {1e3 * curl:.2f} ms (medians)"
    )
    capacities: dict[str, list[float]] = {m: [] for m in args.modes}
    with Generator() as gen:
        bench = Bench(
            engine,
            policy,
            texts,
            limits,
            args.seconds,
            slo,
            gen,
            args.min_requests,
            args.max_seconds,
        )
        for rnd in range(args.repeats):
            modes = ["full"] + [m for m in args.modes if m != "full"]
            rest = modes[1:]
            rest = rest[rnd % len(rest) :] + rest[: rnd % len(rest)] if rest else rest
            for mode in ["full", *rest]:
                start = capacities[mode][-1] if capacities[mode] else 0.5 / model
                start = start if start > 0 else 0.5 / model
                with serve(engine, policy, mode, limits) as srv:
                    run_load(srv.url, texts, 1 / model, 20, 2, generator=gen)  # warm-up
                    cap = bench.capacity(srv, mode, start, rnd)
                capacities[mode].append(cap)
                say(f"round {rnd}: {mode} capacity {cap:.1f} requests/s")
            full_cap = capacities["full"][-1]
            for mode in ["full", *rest]:
                with serve(engine, policy, mode, limits) as srv:
                    run_load(srv.url, texts, 1 / model, 20, 2, generator=gen)  # warm-up
                    for share in (0.5, 0.8):
                        if full_cap > 0:
                            bench.measure(srv, mode, share * full_cap, f"equal {share:g}", rnd)
    table = pd.DataFrame(bench.points)
    table.to_csv(args.out or sys.stdout, sep="\t", index=False, float_format="%.4g")
    say(f"load average after: {os.getloadavg()}")
    say(
        f"capacity under the SLO (p99 <= {1e3 * slo:.1f} ms), median [min, max] over "
        f"{args.repeats} rounds:"
    )
    for mode, caps in capacities.items():
        say(f"  {mode}: {spread(caps)} requests/s")
    full = np.array(capacities["full"])
    for mode in args.modes:
        if mode == "full":
            continue
        ratio = np.array(capacities[mode]) / np.where(full > 0, full, np.nan)
        say(
            f"  {mode}/full: {spread(ratio)} = {np.median(ratio) / speedup:.2f} of the layer "
            f"speed-up {speedup:.2f}"
        )
    say("latency at equal offered load: the median over rounds (per-point intervals in the TSV):")
    for share in (0.5, 0.8):
        rows = table[table.what == f"equal {share:g}"]
        base = None
        for mode in ["full", *[m for m in args.modes if m != "full"]]:
            group = rows[rows["mode"] == mode]
            if group.empty:
                continue
            # per round: its percentiles (intervals in the TSV); here their median over
            # rounds, and the requests behind them all
            p50, p99 = np.median(group.p50_ms), np.median(group.p99_ms)
            text = (
                f"  {share:.0%} of full capacity, {mode}: p50 {p50:.1f} ms "
                f"(rounds {spread(group.p50_ms)}), p99 {p99:.1f} ms (rounds "
                f"{spread(group.p99_ms)}), {int(group.sent.sum())} requests, "
                f"{int(group.failed.sum())} failed; rows per call (median over rounds) "
                f"mean {np.median(group.rows_per_call):.1f}, p10/p50/p90 "
                f"{np.median(group.rows_p10):.0f}/{np.median(group.rows_p50):.0f}/"
                f"{np.median(group.rows_p90):.0f}"
            )
            if mode == "full":
                base = (p50, p99)
            elif base is not None:
                text += f"; vs full p50 {p50 / base[0] - 1:+.0%}, p99 {p99 / base[1] - 1:+.0%}"
            say(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
