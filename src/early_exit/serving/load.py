"""An open-loop load generator: Poisson arrivals at a given rate, on the loopback address only.

Open loop: a request is sent at its arrival time whether or not earlier ones have been
answered (a closed loop, waiting for each answer, would hide queueing). Every run is
bounded in count (`n_requests`) and in time (`max_seconds`: arrivals stop, and requests
still unanswered at the end count as lost).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlparse

import numpy as np

from early_exit.support.errors import ConfigError

# httpx logs every request at INFO: thousands of lines per load, none of them news
logging.getLogger("httpx").setLevel(logging.WARNING)


@dataclass
class LoadResult:
    rate: float  # offered arrivals per second
    sent: int
    answered: int  # 200 answers
    errors: dict[int, int]  # status -> count (0: no answer, connection failed or time up)
    latencies: np.ndarray  # seconds, of the 200 answers
    seconds: float  # first arrival to last answer
    answers: list  # per request: its JSON answers (None unless 200), in send order

    @property
    def throughput(self) -> float:
        """Answered requests per second."""
        return self.answered / self.seconds if self.seconds > 0 else float("nan")

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if len(self.latencies) else float("nan")


def check_loopback(url: str) -> None:
    host = urlparse(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(f"{url}: the load generator sends to the loopback address only")


def arrivals(rate: float, n: int, seed: int = 0) -> np.ndarray:
    """Arrival times (seconds from start) of a Poisson process at `rate` per second."""
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.exponential(1.0 / rate, n))


async def _load(url, bodies, times, max_seconds, timeout):
    import httpx

    limits = httpx.Limits(max_connections=len(bodies) + 1, max_keepalive_connections=64)
    statuses, latencies, answers = [0] * len(bodies), [np.nan] * len(bodies), [None] * len(bodies)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:
        start = time.perf_counter()

        async def one(i):
            await asyncio.sleep(max(0.0, times[i] - (time.perf_counter() - start)))
            sent = time.perf_counter()
            try:
                r = await client.post("/classify", json=bodies[i])
            except httpx.HTTPError:
                return
            statuses[i] = r.status_code
            latencies[i] = time.perf_counter() - sent
            if r.status_code == 200:
                answers[i] = r.json()["answers"]

        tasks = [
            asyncio.ensure_future(one(i)) for i in range(len(bodies)) if times[i] < max_seconds
        ]
        done, pending = (
            await asyncio.wait(tasks, timeout=max_seconds + timeout) if tasks else ((), ())
        )
        for task in pending:
            task.cancel()
        seconds = time.perf_counter() - start
    return statuses, np.array(latencies), answers, seconds, len(tasks)


def run_load(
    url: str,
    texts: list[str],
    rate: float,
    n_requests: int,
    max_seconds: float = 30.0,
    timeout: float = 30.0,
    seed: int = 0,
    pairs: list[str] | None = None,
) -> LoadResult:
    """Send `n_requests` one-text requests (cycling over `texts`) at Poisson `rate`."""
    check_loopback(url)
    if rate <= 0 or n_requests <= 0:
        raise ConfigError(f"load: rate {rate} and n_requests {n_requests} must be > 0")
    pick = [i % len(texts) for i in range(n_requests)]
    bodies = [{"text": texts[i]} | ({"text_pair": pairs[i]} if pairs else {}) for i in pick]
    times = arrivals(rate, n_requests, seed)
    statuses, latencies, answers, seconds, sent = asyncio.run(
        _load(url, bodies, times, max_seconds, timeout)
    )
    ok = np.array([s == 200 for s in statuses])
    errors: dict[int, int] = {}
    for s in statuses[:sent]:
        if s != 200:
            errors[s] = errors.get(s, 0) + 1
    last = float(times[min(sent, len(times)) - 1]) if sent else 0.0
    span = float(np.nanmax(times[:sent] + np.nan_to_num(latencies[:sent]))) if sent else 0.0
    return LoadResult(
        rate, sent, int(ok.sum()), errors, latencies[ok], max(span, last), answers[:sent]
    )
