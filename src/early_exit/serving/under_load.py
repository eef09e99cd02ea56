"""The workflow's serving stage: throughput and tail latency under load, per serving mode.

For each early-exit run of one task, at the knob chosen on dev, the real HTTP server
(`early_exit.serving.app`, uvicorn on 127.0.0.1) is started once per mode and the load
generator (`early_exit.serving.load`) offers open-loop Poisson arrivals of single test
texts at each rate: `full` (full depth, dynamic batching: the baseline a user would
deploy), `shrink` (dynamic batching, the engine's shrinking batch) and `refill` (the
refilling scheduler). Every point is bounded in requests and in seconds. One job measures
every run, alone on the machine, like the latency stage.

Rates: `rates` are multiples of the run's unloaded full-depth rate (1 / its batch-1
full-depth latency, measured first through the server), so one config fits tiny and
full-size models. Every mode is offered the same arrival sequence at a rate (seeded by the
rate's multiple), from a load generator in its own process (`early_exit.serving.load`);
latency counts from the scheduled arrival, failures as infinite latency. Output per run:
serving.tsv, one row per (mode, rate), with the samples behind the percentiles (`sent`)
and 95% order-statistic intervals for p50 and p90.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from early_exit.data.prepared import load_split
from early_exit.exits.operating_points import knob_for
from early_exit.serving.app import bind, create_app, server
from early_exit.serving.limits import Limits
from early_exit.serving.load import Generator, LoadResult, paired_seed, run_load
from early_exit.serving.scheduler import MODES
from early_exit.support.errors import DataError
from early_exit.support.tables import write_table

COLUMNS = [
    "mode",
    "offered_rate",
    "rate_multiple",
    "sent",  # the samples behind every percentile (failures included as infinite)
    "answered",
    "rejected",  # rejected, timed out or unanswered: infinite latency, lost goodput
    "throughput",  # 200 answers per second in the steady-state window
    "p50_ms",
    "p50_low_ms",  # 95% order-statistic interval
    "p50_high_ms",
    "p90_ms",
    "p90_low_ms",
    "p90_high_ms",
    "p99_ms",
    "rows_per_call",  # mean rows per layer call (refill) or batch (shrink, full)
    "unloaded_ms",  # batch-1 full-depth latency through the server (HTTP included)
    "model_ms",  # batch-1 full-depth model time, the engine alone
    "slo_ms",  # the latency objective: `slo` x model_ms
    "threshold",
]


@dataclass(frozen=True)
class ServingSettings:
    """The config's `serving:` section, typed (`task` is the workflow's planning:
    `early_exit.config.plan`). Its defaults are written only here:
    tests/architecture/test_one_place.py checks the schema's against them."""

    rates: tuple[float, ...] = (1, 2, 4)
    """Offered rates, as multiples of the run's unloaded full-depth rate."""
    requests: int = 60
    """At most this many requests per rate."""
    seconds: float = 0.8
    """At most this long per rate."""
    slo: float = 5
    """The latency objective, in unloaded batch-1 model times."""
    texts: int = 64
    """The first `texts` test examples are the requests' texts."""
    max_batch: int = 32
    """The server's largest batch."""
    max_queue: int = 256
    """The server's queue; beyond it requests are rejected."""
    max_wait: int = 4
    """The server's dynamic batching wait (`serving.limits.Limits.max_wait`)."""
    timeout: float = 10
    """A request's timeout, in seconds."""

    @classmethod
    def from_config(cls, section: dict | None) -> ServingSettings:
        """The settings of a (validated) `serving:` section; None: the defaults."""
        given = {k: v for k, v in (section or {}).items() if k != "task"}
        if "rates" in given:
            given["rates"] = tuple(given["rates"])
        return cls(**given)

    def replace(self, **changes) -> ServingSettings:
        return dataclasses.replace(self, **changes)


class Running:
    """A server on 127.0.0.1 in a thread, stopped (gracefully) on exit."""

    def __init__(self, engine, policy, mode: str, limits: Limits):
        self.sock = bind("127.0.0.1", 0)
        self.server = server(create_app(engine, policy, mode, limits), self.sock, graceful=10)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def __enter__(self) -> Running:
        self.thread.start()
        for _ in range(400):  # bounded: 20 s
            if self.server.started:
                return self
            time.sleep(0.05)
        raise DataError("serving stage: the server did not start within 20 s")

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


def unloaded_latency(url: str, texts: list[str], n: int = 8) -> float:
    """Median seconds of one request at a time (no queueing), on one keep-alive connection."""
    import httpx

    times = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for text in (texts * n)[: n + 2]:
            start = time.perf_counter()
            client.post("/classify", json={"text": text}).raise_for_status()
            times.append(time.perf_counter() - start)
    return float(np.median(times[2:]))


def model_time(engine, texts: list[str], pairs=None, n: int = 10) -> float:
    """Median seconds of one text at full depth, batch 1, the engine alone (no HTTP)."""
    import torch

    features, _ = engine.encode(texts[:n], None if pairs is None else pairs[:n])
    times = []
    with torch.inference_mode():
        engine.run(features[:2], None, batch_size=1)  # warm-up
        for feature in (features * n)[:n]:
            start = time.perf_counter()
            engine.run([feature], None, batch_size=1)
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def rows_per_call(url: str) -> dict[int, int]:
    """The server's histogram of rows per layer call (or batch) so far."""
    import httpx

    got = httpx.get(f"{url}/metrics", timeout=30).json()["rows_per_call"]
    return {int(k): n for k, n in got.get("histogram", {}).items()}


def calls_between(before: dict[int, int], after: dict[int, int]) -> np.ndarray:
    """The row counts of the calls made between two histograms (sorted)."""
    calls = {k: n - before.get(k, 0) for k, n in sorted(after.items())}
    return np.repeat(list(calls), list(calls.values())).astype(np.int64)


def mean_rows(before: dict[int, int], after: dict[int, int]) -> float:
    """Mean rows per call of the calls made between two histograms."""
    calls = calls_between(before, after)
    return float(calls.mean()) if calls.size else float("nan")


def point(load: LoadResult) -> dict:
    """A load's figures: counts, throughput, percentiles (ms) with their intervals."""
    out = {
        "sent": load.sent,
        "answered": load.answered,
        "rejected": load.failed,
        "throughput": load.throughput,
    }
    for q in (50, 90, 99):
        est, low, high, _ = load.interval(q)
        out[f"p{q}_ms"] = 1e3 * est
        if q != 99:
            out[f"p{q}_low_ms"], out[f"p{q}_high_ms"] = 1e3 * low, 1e3 * high
    return out


def measure_run(
    run: dict,
    points_path: str,
    settings: ServingSettings,
    device: str = "cpu",
    gen: Generator | None = None,
) -> pd.DataFrame:
    """serving.tsv's rows for one run (its engine loaded once, a server per mode), the
    load offered from `gen`'s process (a new one when None)."""
    if gen is None:
        with Generator() as own:
            return measure_run(run, points_path, settings, device, own)
    from early_exit.inference.engine import EarlyExitEngine

    key = run["run_key"]
    engine = EarlyExitEngine.from_run(run["run_dir"], device=device)
    knob = run.get("threshold")  # given (tests), else the one chosen on dev
    if knob is None:
        knob = knob_for(None, run["policy"], key=key, points=points_path, fallback=False)
    policy = engine.policy(run["policy"], knob, **run.get("options", {}))
    fields = engine.fields
    records = load_split(run["data_dir"], "test")[: settings.texts]
    texts = [r[fields[0]] for r in records]
    pairs = [r[fields[1]] for r in records] if len(fields) > 1 else None
    limits = Limits(
        max_batch=settings.max_batch,
        max_queue=settings.max_queue,
        max_texts=1,
        timeout=settings.timeout,
        max_wait=settings.max_wait,
    )
    with Running(engine, None, "full", limits) as srv:
        unloaded = unloaded_latency(srv.url, texts)
    model = model_time(engine, texts, pairs, n=5)
    rows = []
    for mode in MODES:
        with Running(engine, None if mode == "full" else policy, mode, limits) as srv:
            run_load(srv.url, texts, 1.0 / unloaded, 4, 2.0, pairs=pairs, generator=gen)
            for multiple in settings.rates:
                rate = multiple / unloaded
                before = rows_per_call(srv.url)
                load = run_load(  # the arrivals within `seconds`, at most `requests`
                    srv.url,
                    texts,
                    rate,
                    settings.requests,
                    settings.seconds,
                    settings.timeout,
                    seed=paired_seed(multiple),  # the same arrivals for every mode
                    pairs=pairs,
                    generator=gen,
                )
                rows.append(
                    {
                        "mode": mode,
                        "offered_rate": rate,
                        "rate_multiple": multiple,
                        **point(load),
                        "rows_per_call": mean_rows(before, rows_per_call(srv.url)),
                        "unloaded_ms": 1e3 * unloaded,
                        "model_ms": 1e3 * model,
                        "slo_ms": 1e3 * model * settings.slo,
                        "threshold": knob,
                    }
                )
    return pd.DataFrame(rows, columns=COLUMNS)


def serve_runs(
    runs: list[dict],
    tables: list[str],
    points_path: str,
    settings: ServingSettings,
    device: str = "cpu",
    threads: int | None = None,
) -> None:
    """Measure every run, one after the other, and write its serving.tsv."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    with Generator() as gen:  # the client's process, started once for every run
        for run, table in zip(runs, tables, strict=True):
            frame = measure_run(run, points_path, settings, device, gen)
            write_table(frame, Path(table), run["run_key"])
