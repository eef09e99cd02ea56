"""An open-loop load generator that measures the server, not itself: Poisson arrivals at a
given rate, sent from a separate process, to the loopback address only.

- Open loop: a request is sent at its scheduled arrival time whether or not earlier ones
  have been answered (a closed loop, waiting for each answer, would hide queueing).
- Its own process (`Generator`, `python -m early_exit.serving.load`): the server's worker
  threads and event loop never share an interpreter, a GIL or an event loop with the
  client that times them.
- Paired: the arrival times depend on the rate and a base seed only (`paired_seed`), so
  every serving mode is offered the same sequence at a rate.
- Latency is timed from the *scheduled* arrival, not the actual send: a client running
  late does not hide its own lateness (the send lag is reported beside it).
- Failures count: a rejected (503), timed-out (504) or unanswered request has infinite
  latency in the percentiles and is lost goodput.
- Throughput is completions per second in a steady-state window (from the arrival of the
  first `warmup` fraction of requests to the last arrival), not answered / (first arrival
  to last answer), which mixes the arrival window with the drain.
- Every percentile comes with the number of samples behind it and an order-statistic
  interval (`quantile_interval`, scipy's `quantile_test`).

Every run is bounded in count (`n_requests`) and in time (`max_seconds` of arrivals, then
at most `timeout` seconds for the last answers).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from early_exit.support.errors import ConfigError, DataError

# httpx logs every request at INFO: thousands of lines per load, none of them news
logging.getLogger("httpx").setLevel(logging.WARNING)


def quantile_interval(values: np.ndarray, q: float, confidence: float = 0.95):
    """(estimate, low, high, samples) of the `q` quantile (0-1) of `values`, which may hold
    inf (failures): the estimate is an order statistic (numpy's inverted CDF), the interval
    the distribution-free one from order statistics (scipy.stats.quantile_test); high is
    inf (low -inf) when too few samples bound it."""
    from scipy.stats import quantile_test

    values = np.asarray(values, dtype=float)
    n = int(values.size)
    if n == 0:
        return float("nan"), float("nan"), float("nan"), 0
    estimate = float(np.quantile(values, q, method="inverted_cdf"))
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return estimate, float("inf"), float("inf"), n
    # quantile_test needs a finite hypothesised value; the interval does not depend on it
    ci = quantile_test(values, q=float(finite.min()), p=q).confidence_interval(confidence)
    low = -np.inf if np.isnan(ci.low) else float(ci.low)  # scipy: nan where unbounded
    high = np.inf if np.isnan(ci.high) else float(ci.high)
    return estimate, low, high, n


@dataclass
class LoadResult:
    rate: float  # offered arrivals per second
    scheduled: np.ndarray  # arrival time of each request sent, s from the start
    status: np.ndarray  # per request: HTTP status, 0 when no answer (connection, time up)
    done: np.ndarray  # per request: when its answer arrived, s from the start (nan: none)
    lag: np.ndarray  # per request: actual send - scheduled arrival, s
    answers: list  # per request: its JSON answers (None unless 200), in arrival order
    warmup: float = 0.1  # fraction of the arrivals before the steady-state window

    @property
    def sent(self) -> int:
        return int(self.status.size)

    @property
    def answered(self) -> int:
        """200 answers."""
        return int((self.status == 200).sum())

    @property
    def failed(self) -> int:
        """Rejected, timed out or unanswered: lost goodput, infinite latency."""
        return self.sent - self.answered

    @property
    def errors(self) -> dict[int, int]:
        """Status -> count of the requests not answered 200 (0: no answer at all)."""
        keys, counts = np.unique(self.status[self.status != 200], return_counts=True)
        return {int(k): int(c) for k, c in zip(keys, counts, strict=True)}

    @property
    def latencies(self) -> np.ndarray:
        """Seconds from each request's scheduled arrival to its answer; inf if it failed."""
        out = np.full(self.sent, np.inf)
        ok = self.status == 200
        out[ok] = self.done[ok] - self.scheduled[ok]
        return out

    @property
    def window(self) -> tuple[float, float]:
        """The steady-state window: from the arrival of the first `warmup` fraction of the
        requests to the last arrival."""
        if self.sent < 2:
            return 0.0, float(self.scheduled[-1]) if self.sent else 0.0
        first = int(np.floor(self.warmup * self.sent))
        return float(self.scheduled[first]), float(self.scheduled[-1])

    @property
    def throughput(self) -> float:
        """200 answers per second that arrived within the steady-state window."""
        start, end = self.window
        if end <= start:
            return float("nan")
        ok = self.status == 200
        inside = ok & (self.done >= start) & (self.done <= end)
        return float(inside.sum() / (end - start))

    def percentile(self, q: float) -> float:
        """The q-th percentile (0-100) of the latencies, failures included (inf)."""
        return quantile_interval(self.latencies, q / 100)[0]

    def interval(self, q: float, confidence: float = 0.95):
        """(estimate, low, high, samples) of the q-th percentile (0-100)."""
        return quantile_interval(self.latencies, q / 100, confidence)


def check_loopback(url: str) -> None:
    host = urlparse(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(f"{url}: the load generator sends to the loopback address only")


def paired_seed(rate: float, base: int = 0) -> int:
    """The seed of the arrival process at `rate`: the same for every mode (paired loads),
    different between rates; never derived from a mode or a count of earlier points."""
    return int(np.random.SeedSequence([base, round(rate * 1e6)]).generate_state(1)[0])


def arrivals(rate: float, n: int, seed: int = 0) -> np.ndarray:
    """Arrival times (seconds from start) of a Poisson process at `rate` per second."""
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.exponential(1.0 / rate, n))


# ---------------------------------------------------------------- the client process


async def _load(url, bodies, times, max_seconds, timeout):
    import httpx

    n = len(bodies)
    limits = httpx.Limits(max_connections=n + 1, max_keepalive_connections=256)
    status, done, lag, answers = [0] * n, [None] * n, [None] * n, [None] * n
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:
        with contextlib.suppress(httpx.HTTPError):  # a connection open before the clock
            await client.get("/health", timeout=10)
        start = time.perf_counter()

        async def one(i):
            await asyncio.sleep(max(0.0, times[i] - (time.perf_counter() - start)))
            lag[i] = time.perf_counter() - start - times[i]
            try:
                r = await client.post("/classify", json=bodies[i])
            except httpx.HTTPError:
                return
            done[i] = time.perf_counter() - start
            status[i] = r.status_code
            if r.status_code == 200:
                answers[i] = r.json()["answers"]

        tasks = [asyncio.ensure_future(one(i)) for i in range(n)]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=max_seconds + timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
    return {"status": status, "done": done, "lag": lag, "answers": answers}


def _child() -> None:
    """The generator process: one JSON load per line on stdin, its result a line on stdout."""
    for line in sys.stdin:
        spec = json.loads(line)
        out = asyncio.run(
            _load(spec["url"], spec["bodies"], spec["times"], spec["max_seconds"], spec["timeout"])
        )
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


class Generator:
    """A load-generator process, started once and reused for many loads (its start-up,
    about a second, is paid once); a context manager that ends it."""

    def __init__(self):
        import early_exit

        # the child imports this very package, wherever the parent found it
        src = str(Path(early_exit.__file__).resolve().parents[1])
        path = os.environ.get("PYTHONPATH")
        env = os.environ | {"PYTHONPATH": src + (os.pathsep + path if path else "")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "early_exit.serving.load"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def load(self, spec: dict) -> dict:
        self.process.stdin.write(json.dumps(spec) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise DataError(f"the load generator process ended (exit status {self.process.poll()})")
        return json.loads(line)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Generator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_load(
    url: str,
    texts: list[str],
    rate: float,
    n_requests: int,
    max_seconds: float = 30.0,
    timeout: float = 30.0,
    seed: int | None = None,
    pairs: list[str] | None = None,
    generator: Generator | None = None,
) -> LoadResult:
    """Send up to `n_requests` one-text requests (cycling over `texts`) at Poisson `rate`
    (arrivals within `max_seconds`), from `generator`'s process (a new one when None).
    `seed` None: `paired_seed(rate)`, the same sequence for every mode at this rate."""
    check_loopback(url)
    if rate <= 0 or n_requests <= 0:
        raise ConfigError(f"load: rate {rate} and n_requests {n_requests} must be > 0")
    times = arrivals(rate, n_requests, paired_seed(rate) if seed is None else seed)
    times = times[times < max_seconds]
    pick = [i % len(texts) for i in range(times.size)]
    bodies = [{"text": texts[i]} | ({"text_pair": pairs[i]} if pairs else {}) for i in pick]
    spec = {
        "url": url,
        "bodies": bodies,
        "times": times.tolist(),
        "max_seconds": max_seconds,
        "timeout": timeout,
    }
    if generator is None:
        with Generator() as own:
            out = own.load(spec)
    else:
        out = generator.load(spec)
    as_float = lambda values: np.array([np.nan if v is None else v for v in values], float)  # noqa: E731
    return LoadResult(
        rate,
        times,
        np.array(out["status"], dtype=np.int64),
        as_float(out["done"]),
        as_float(out["lag"]),
        out["answers"],
    )


if __name__ == "__main__":
    _child()
