"""Early exiting under load: a scheduler that keeps the batch full as rows exit.

The engine's batch shrinks as rows exit (`early_exit.inference.cohort.Cohort`): right for
one batch, but a stream of requests can take the places that exited rows leave. Rows at
different depths cannot share one layer call, so the rows in flight are held as cohorts,
one per depth, and each `tick` makes one layer call. The rule:

1. Admit: while rows in flight are fewer than `max_batch`, the oldest waiting rows (FIFO)
   are embedded as a new cohort at depth 0 (joining the depth-0 cohort if there is one);
   under `Admission.bulk()` only once `rows` slots are free and as many rows wait, or the
   oldest has waited `after` seconds, or nothing is in flight, and while fewer than
   `cohorts` cohorts are live (or it joins the depth-0 one).
2. Step: the cohort that has waited more than `max_wait` ticks since it last ran, the
   longest-waiting first; otherwise the shallowest cohort ("catch up"), or under
   `choice="fullest"` the one with the most rows x (ticks waited + 1).
3. Merge: a cohort that reaches the depth of another becomes one with it, so the layers
   after the meeting point run on one fuller batch.

Fairness bound: cohorts sit at distinct depths, so there are at most C of them (L layers,
or the `cohorts` cap if smaller); a cohort that is not stepped waits at most `max_wait`
ticks before it is eligible and then at most C - 1 ticks behind the other eligible ones
(rule 2's overdue clause comes before either choice): it runs at least once every
`max_wait + C` ticks and answers within `L * (max_wait + C)` ticks of admission.
Admission is FIFO and rows in flight answer within that bound, so no request waits
forever. (`tests/serving/test_scheduler.py` checks it on a synthetic stream, for both
admissions.)

The answers are the engine's: each row walks the same layers, heads and policy (the
policy's per-row state travels with it); merging pads hidden states to the wider cohort,
where the attention mask hides the padding, so the logits differ from a one-batch run
only by floating-point differences between batch shapes, as the engine's own batch sizes
do (its near-knob tolerance).

Modes: `refill` (this scheduler), `shrink` (dynamic batching: the waiting rows, up to
`max_batch`, run as one shrinking batch to the end before the next batch is admitted) and
`full` (the same at full depth, the baseline a user would deploy). Every mode serves
either engine: the cohort is the walk both engines run, over their own backend (torch, or
the ONNX Runtime sessions of an export).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from early_exit.inference.cohort import Cohort, Decisions, pack
from early_exit.inference.engine import Answer
from early_exit.serving.metrics import RowsPerCall
from early_exit.support.errors import ConfigError

MODES = ("full", "shrink", "refill")


class QueueFull(Exception):
    """More rows waiting than the server's maximum queue."""


@dataclass
class Job:
    """One request: its texts' token features, answered together when all rows are done."""

    features: list[dict]
    truncated: np.ndarray
    done: Callable[[list[Answer] | None, Exception | None], None]
    arrived: float = field(default_factory=time.perf_counter)  # queued
    admitted: float | None = None  # its first row taken by the scheduler
    finished: float | None = None  # its last row answered
    cancelled: bool = False
    decisions: Decisions | None = None
    left: int = 0


CHOICES = ("shallowest", "fullest")


@dataclass(frozen=True)
class Admission:
    """When the refilling scheduler admits waiting rows, and which cohort it steps.

    The default (`rows=1, after=0, cohorts=None, choice="shallowest"`) admits whenever a
    slot is free and steps the shallowest cohort: under load it leaves many small cohorts,
    each layer call streaming a layer's weights for a few rows. `bulk()` admits at layer 0
    only once `rows` slots are free (and as many rows wait) or the oldest waiting row has
    waited `after` seconds (or nothing is in flight), keeps at most `cohorts` cohorts live,
    and steps the cohort with the most rows x ticks waited."""

    rows: int = 1  # admit once this many slots are free and as many rows wait
    after: float = 0.0  # ... or once the oldest waiting row has waited this long (s)
    cohorts: int | None = None  # at most this many cohorts live (None: one per depth)
    choice: str = "shallowest"  # or "fullest": the most rows x ticks waited

    @classmethod
    def bulk(cls, max_batch: int = 32) -> Admission:
        return cls(rows=max(1, max_batch // 4), after=0.005, cohorts=4, choice="fullest")

    def check(self) -> None:
        if self.choice not in CHOICES:
            raise ConfigError(
                f"serving choice {self.choice!r}: expected one of {', '.join(CHOICES)}"
            )
        if self.rows < 1 or self.after < 0 or (self.cohorts is not None and self.cohorts < 1):
            raise ConfigError(
                f"serving admission {self}: rows and cohorts must be >= 1, after >= 0"
            )

    def admits(self, scheduler: Scheduler, free: int) -> bool:
        """Whether to admit now (`free` slots, rows waiting)."""
        cohorts = scheduler.cohorts
        if not cohorts:
            return True  # nothing in flight: waiting would only add latency
        at_zero = any(c.depth == 0 for c in cohorts)
        if self.cohorts is not None and len(cohorts) >= self.cohorts and not at_zero:
            return False
        if free >= self.rows and len(scheduler.waiting) >= self.rows:
            return True
        job = scheduler.waiting[0][0]
        return time.perf_counter() - job.arrived >= self.after


class Scheduler:
    """Rows of many requests through one engine, in one of `MODES`; not thread-safe:
    the `Worker` thread owns it."""

    def __init__(
        self,
        engine,
        policy,
        mode: str = "refill",
        max_batch: int = 32,
        max_wait: int = 4,
        admission: Admission | None = None,
    ):
        if mode not in MODES:
            raise ConfigError(f"serving mode {mode!r}: expected one of {', '.join(MODES)}")
        self.admission = admission or Admission()
        self.admission.check()
        self.engine, self.mode, self.max_batch, self.max_wait = engine, mode, max_batch, max_wait
        self.policy = None if mode == "full" else policy
        self.waiting: collections.deque[tuple[Job, int]] = collections.deque()
        self.cohorts: list[Cohort] = []
        self.waited: dict[int, int] = {}  # id(cohort) -> ticks since it last ran
        self.rows: dict[int, tuple[Job, int]] = {}  # row id -> (job, index in job)
        self.next_row = 0
        self.ticks = 0  # layer calls (refill) or batches (shrink, full)
        self.rows_per_call = RowsPerCall()  # rows per layer call (refill) or batch

    @property
    def in_flight(self) -> int:
        return sum(len(c.rows) for c in self.cohorts)

    def submit(self, job: Job) -> None:
        n = len(job.features)
        job.left = n
        job.decisions = self.engine.empty_decisions(n)
        self.waiting.extend((job, i) for i in range(n))

    def idle(self) -> bool:
        return not self.waiting and not self.cohorts

    # ---------------------------------------------------------------- one step

    def tick(self) -> None:
        """One unit of work: a layer call (refill) or one dynamic batch (shrink, full)."""
        if self.mode == "refill":
            self._admit()
            if self.cohorts:
                self._step()
        else:
            self._batch()
        self.ticks += 1

    def _take(self, n: int) -> list[tuple[Job, int]]:
        taken = []
        while self.waiting and len(taken) < n:
            job, i = self.waiting.popleft()
            if not job.cancelled:
                if job.admitted is None:
                    job.admitted = time.perf_counter()
                taken.append((job, i))
        return taken

    def _batch(self) -> None:
        taken = self._take(self.max_batch)
        if not taken:
            return
        features = [job.features[i] for job, i in taken]
        decisions = self.engine.run(features, self.policy, batch_size=len(features))
        self.rows_per_call.add(len(features))
        for k, (job, i) in enumerate(taken):
            self._answer(job, i, decisions.exit_index[k], decisions.logits[k], decisions.score[k])

    def _admit(self) -> None:
        free = self.max_batch - self.in_flight
        if not self.waiting or free <= 0 or not self.admission.admits(self, free):
            return
        taken = self._take(free)
        if not taken:
            return
        features = [job.features[i] for job, i in taken]
        ids = np.arange(self.next_row, self.next_row + len(taken))
        self.next_row += len(taken)
        for row, entry in zip(ids, taken, strict=True):
            self.rows[int(row)] = entry
        batch = pack(features, self.engine.tokenizer).batch(np.arange(len(features)))
        cohort = Cohort(self.engine.backend, batch, ids, self.policy)
        self._place(cohort)

    def _place(self, cohort: Cohort) -> None:
        """Put `cohort` in flight, merged with the one at its depth if there is one."""
        for other in self.cohorts:
            if other.depth == cohort.depth:
                other.merge(cohort)
                return
        self.cohorts.append(cohort)
        self.waited[id(cohort)] = 0

    def choose(self) -> Cohort:
        """The cohort to step (the module's rule 2)."""
        overdue = [c for c in self.cohorts if self.waited[id(c)] > self.max_wait]
        if overdue:
            return max(overdue, key=lambda c: self.waited[id(c)])
        if self.admission.choice == "fullest":
            # rows x age: the call that serves the most row-ticks of waiting; ties to the
            # shallowest (catch-up, so cohorts meet and merge)
            return max(
                self.cohorts, key=lambda c: (len(c.rows) * (self.waited[id(c)] + 1), -c.depth)
            )
        return min(self.cohorts, key=lambda c: c.depth)

    def _step(self) -> None:
        cohort = self.choose()
        self.cohorts.remove(cohort)
        del self.waited[id(cohort)]
        for other in self.cohorts:
            self.waited[id(other)] += 1
        self.rows_per_call.add(len(cohort.rows))
        exited = cohort.step()
        if exited is not None:
            for k, row in enumerate(exited.rows):
                job, i = self.rows.pop(int(row))
                self._answer(job, i, exited.exit_index, exited.logits[k], exited.score[k])
        if cohort.rows.size:
            self._place(cohort)

    def _answer(self, job: Job, i: int, exit_index, logits, score) -> None:
        job.decisions.exit_index[i] = exit_index
        job.decisions.logits[i] = logits
        job.decisions.score[i] = score
        job.left -= 1
        if job.left == 0 and not job.cancelled:
            job.finished = time.perf_counter()
            name = "none" if self.policy is None else self.policy.score_name
            try:
                answers = self.engine.answers(job.decisions, job.features, job.truncated, name)
            except Exception as err:  # noqa: BLE001 - handed to the request, not the worker
                job.done(None, err)
                return
            job.done(answers, None)


class Worker:
    """The one thread that runs the model: requests are queued from any thread (the
    server's event loop) and the scheduler, seeing all of them, runs until stopped; `stop`
    answers what is queued and in flight before the thread ends (graceful shutdown)."""

    def __init__(self, scheduler: Scheduler, max_queue: int = 256):
        self.scheduler, self.max_queue = scheduler, max_queue
        self._lock = threading.Condition()
        self._inbox: list[Job] = []
        self._queued = 0  # rows submitted and not yet admitted by the scheduler
        self._stopping = False
        self.submitted = 0  # requests accepted
        self._thread = threading.Thread(target=self._loop, name="early-exit-serving", daemon=True)

    def start(self) -> Worker:
        self._thread.start()
        return self

    def submit(self, job: Job) -> None:
        with self._lock:
            if self._stopping:
                raise QueueFull("the server is shutting down")
            waiting = self._queued + len(self.scheduler.waiting)
            if waiting + len(job.features) > self.max_queue:
                raise QueueFull(
                    f"{waiting} texts waiting, the queue holds {self.max_queue}; retry later"
                )
            self._inbox.append(job)
            self._queued += len(job.features)
            self.submitted += 1
            self._lock.notify()

    def stop(self, timeout: float = 30.0) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify()
        self._thread.join(timeout)

    def _loop(self) -> None:
        with self.scheduler.engine.backend.no_grad():  # torch: its inference mode
            while True:
                with self._lock:
                    while not self._inbox and self.scheduler.idle() and not self._stopping:
                        self._lock.wait(0.5)
                    inbox, self._inbox, self._queued = self._inbox, [], 0
                    if not inbox and self.scheduler.idle() and self._stopping:
                        return
                for job in inbox:
                    self.scheduler.submit(job)
                try:
                    self.scheduler.tick()
                except Exception as err:  # noqa: BLE001 - fail the rows in flight, keep serving
                    self._fail(err)

    def _fail(self, err: Exception) -> None:
        s = self.scheduler
        jobs = {id(job): job for job, _ in list(s.waiting) + list(s.rows.values())}
        s.waiting.clear()
        s.rows.clear()
        s.cohorts.clear()
        s.waited.clear()
        for job in jobs.values():
            if not job.cancelled:
                job.cancelled = True
                job.done(None, err)
