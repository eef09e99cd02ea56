"""The HTTP server's limits: one place for their defaults, which `early-exit serve`'s
options show (this module imports nothing heavy, so the command line can read it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from early_exit.serving.scheduler import Admission


@dataclass(frozen=True)
class Limits:
    max_batch: int = 32  # rows per layer call
    max_queue: int = 256  # texts waiting (503 beyond)
    max_texts: int = 64  # texts per request (413 beyond)
    max_body: int = 1 << 20  # bytes per request
    timeout: float = 30.0  # seconds per request (504)
    max_wait: int = 4  # ticks a cohort waits before it must run (the fairness bound)
    admission: Admission | None = None  # when refill admits rows (None: the eager default)
