"""The server's own timings: where a request's time goes, per stage, and how full the
layer calls are (served at GET /metrics).

Stages of one request, in the order it meets them (seconds, `time.perf_counter`):
`parse` (reading and checking the body), `tokenise` (off the event loop, one pass per
text), `queue` (accepted to admitted by the scheduler), `model` (admitted to its last row
answered: layer calls, its own and those it shares or waits behind), `answer` (the
answers handed back to the event loop and the response built) and `total` (the handler's
whole time). Each keeps its last `keep` samples (bounded memory in a long-running
server); the summary states how many samples stand behind each percentile.
"""

from __future__ import annotations

import collections
import threading

import numpy as np

STAGES = ("parse", "tokenise", "queue", "model", "answer", "total")


class StageTimes:
    """Recent samples per stage, recorded from the event loop; thread-safe reads."""

    def __init__(self, keep: int = 10_000):
        self._lock = threading.Lock()
        self._samples = {stage: collections.deque(maxlen=keep) for stage in STAGES}
        self.requests = 0  # answered 200 since start (all of them, not only the kept)

    def record(self, **seconds: float) -> None:
        with self._lock:
            self.requests += 1
            for stage, value in seconds.items():
                self._samples[stage].append(value)

    def summary(self) -> dict:
        """Per stage: samples, mean, p50, p90 and p99 in milliseconds (None when empty)."""
        with self._lock:
            samples = {stage: np.array(values) for stage, values in self._samples.items()}
        out = {}
        for stage, values in samples.items():
            if values.size == 0:
                out[stage] = {"samples": 0}
                continue
            p50, p90, p99 = np.percentile(values, [50, 90, 99]) * 1e3
            out[stage] = {
                "samples": int(values.size),
                "mean_ms": float(values.mean() * 1e3),
                "p50_ms": float(p50),
                "p90_ms": float(p90),
                "p99_ms": float(p99),
            }
        return out


class RowsPerCall:
    """How many rows each layer call (refill) or batch (shrink, full) ran: a histogram,
    so a long-running server keeps a bounded count, written by the worker thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self.counts: collections.Counter[int] = collections.Counter()

    def add(self, rows: int) -> None:
        with self._lock:
            self.counts[rows] += 1

    def values(self) -> np.ndarray:
        """Every call's row count (sorted), from the histogram."""
        with self._lock:
            items = sorted(self.counts.items())
        if not items:
            return np.zeros(0, dtype=np.int64)
        return np.repeat([k for k, _ in items], [n for _, n in items])

    def summary(self) -> dict:
        values = self.values()
        if values.size == 0:
            return {"calls": 0}
        p10, p50, p90 = np.percentile(values, [10, 50, 90])
        return {
            "calls": int(values.size),
            "mean": float(values.mean()),
            "p10": float(p10),
            "p50": float(p50),
            "p90": float(p90),
            "max": int(values.max()),
            "histogram": {str(k): int(n) for k, n in sorted(self.counts.items())},
        }
