"""The load generator: paired arrivals, latency from the scheduled arrival with failures
as infinite latency, a steady-state throughput, order-statistic intervals, and a client
in its own process."""

import os
import socket

import numpy as np
import pytest
from scipy.stats import binom

from early_exit.serving.load import (
    Generator,
    LoadResult,
    arrivals,
    paired_seed,
    quantile_interval,
    run_load,
)
from early_exit.support.errors import ConfigError


def test_arrivals_are_paired_by_rate_only():
    a = arrivals(50.0, 200, paired_seed(50.0))
    assert np.array_equal(a, arrivals(50.0, 200, paired_seed(50.0)))
    assert not np.array_equal(a[:50], arrivals(50.0, 50, paired_seed(100.0)))
    assert np.array_equal(a[:50], arrivals(50.0, 50, paired_seed(50.0)))  # a prefix
    assert paired_seed(50.0) != paired_seed(50.0, base=1)
    assert abs(200 / a[-1] - 50) < 50 * 0.25  # about the rate


def result(scheduled, status, done):
    n = len(scheduled)
    return LoadResult(
        10.0,
        np.array(scheduled, float),
        np.array(status),
        np.array(done, float),
        np.zeros(n),
        [None] * n,
    )


def test_latency_from_the_scheduled_arrival_failures_infinite():
    r = result([0.0, 1.0, 2.0, 3.0], [200, 503, 200, 0], [0.5, 1.01, 2.25, np.nan])
    assert r.sent == 4 and r.answered == 2 and r.failed == 2
    assert r.errors == {0: 1, 503: 1}
    assert np.array_equal(r.latencies, [0.5, np.inf, 0.25, np.inf])
    assert r.percentile(25) == 0.25 and r.percentile(50) == 0.5
    assert r.percentile(99) == np.inf  # failures are the tail, not left out


def test_throughput_counts_answers_in_the_steady_window_only():
    scheduled = np.arange(100) / 10.0  # 10 per second for 10 s
    done = scheduled + 0.05
    done[-5:] += 100.0  # five answered long after the arrivals stopped (the drain)
    r = result(scheduled, [200] * 100, done)
    start, end = r.window
    assert (start, end) == (1.0, 9.9)
    inside = ((done >= start) & (done <= end)).sum()
    assert r.throughput == pytest.approx(inside / (end - start))
    assert r.throughput < 10.0 and r.throughput > 9.0


def test_quantile_interval_is_the_order_statistic_interval():
    rng = np.random.default_rng(0)
    x = rng.exponential(size=400)
    est, low, high, n = quantile_interval(x, 0.5)
    s = np.sort(x)
    assert n == 400 and est == s[199]  # inverted CDF: the 200th of 400
    assert low < est < high
    # distribution-free: [x_(lo), x_(hi)] (1-based) covers the median with probability
    # P(lo <= B < hi), B ~ Binomial(n, 1/2) the samples below it: at least 95%
    lo, hi = np.searchsorted(s, low) + 1, np.searchsorted(s, high) + 1
    coverage = binom.cdf(hi - 1, 400, 0.5) - binom.cdf(lo - 1, 400, 0.5)
    assert coverage >= 0.95
    # too few samples for a p99: the upper bound is unbounded, and failures make it inf
    assert quantile_interval(x[:40], 0.99)[2] == np.inf
    assert quantile_interval(np.r_[x, [np.inf] * 10], 0.99)[0] == np.inf
    assert quantile_interval(np.array([]), 0.5)[3] == 0


def test_the_generator_runs_in_its_own_process_and_measures_the_server(engine_url):
    url, texts = engine_url
    with Generator() as gen:
        assert gen.process.pid != os.getpid()
        first = run_load(url, texts, 100.0, 20, max_seconds=10, generator=gen)
        again = run_load(url, texts, 100.0, 20, max_seconds=10, generator=gen)
    assert first.answered == again.answered == 20
    assert np.array_equal(first.scheduled, again.scheduled)  # paired
    assert (first.latencies > 0).all() and np.isfinite(first.latencies).all()
    assert (first.lag > -1e-3).all()  # never sent before its time
    with pytest.raises(ConfigError, match="loopback"):
        run_load("http://10.0.0.1:80", texts, 1.0, 1)


def test_requests_never_answered_count_as_failures(serving_runs):
    _, texts = serving_runs
    with socket.socket() as s:  # a loopback port where nothing listens
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    r = run_load(url, texts, 50.0, 10, max_seconds=10, timeout=5)
    assert r.sent == 10 and r.answered == 0 and r.failed == 10 and r.errors == {0: 10}
    assert np.isinf(r.latencies).all() and r.throughput == 0
