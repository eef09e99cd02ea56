"""The refilling scheduler answers as the engine does, and starves no row."""

import numpy as np
import pytest

from early_exit.inference.engine import EarlyExitEngine
from early_exit.serving.scheduler import Admission, Job, Scheduler

KNOBS = (0.3, 0.1, 0.03, 0.01, 3e-3, 1e-3, 3e-4, 1e-4)


def knob(engine, texts):
    """The entropy knob at which the rows spread over the most exit layers."""

    def spread(k):
        return len({a.exit_layer for a in engine.classify(texts, "entropy", k)})

    return max(KNOBS, key=spread)


def engine_answers(engine, texts, batch_size):
    return [
        (a.label, a.exit_layer)
        for a in engine.classify(texts, "entropy", engine.knob, batch_size=batch_size)
    ]


BULK = Admission(rows=3, after=1e9, cohorts=2, choice="fullest")  # the deadline never passes


def served(engine, texts, mode, arrive_every=1, max_batch=8, max_wait=4, admission=None):
    """Submit one text per job, one job every `arrive_every` ticks; tick until all answer."""
    policy = engine.policy("entropy", engine.knob)
    scheduler = Scheduler(engine, policy, mode, max_batch, max_wait, admission)
    results, finished_at = {}, {}

    def done(i):
        def settle(answers, err):
            assert err is None
            results[i] = (answers[0].label, answers[0].exit_layer)
            finished_at[i] = scheduler.ticks

        return settle

    features, truncated = engine.encode(texts)
    submitted = 0
    for _ in range(100 * len(texts)):  # bounded
        if submitted < len(texts) and scheduler.ticks % arrive_every == 0:
            scheduler.submit(Job([features[submitted]], truncated[[submitted]], done(submitted)))
            submitted += 1
        if submitted == len(texts) and scheduler.idle():
            break
        scheduler.tick()
    return [results[i] for i in range(len(texts))], scheduler


@pytest.mark.parametrize("name", ["joint", "sledgehammer"])
def test_same_answers_one_at_a_time_one_batch_and_refilled(serving_runs, name):
    runs, texts = serving_runs
    engine = EarlyExitEngine.from_run(runs[name], device="cpu")
    engine.knob = knob(engine, texts)
    one_batch = engine_answers(engine, texts, 64)
    assert engine_answers(engine, texts, 1) == one_batch
    shared = []
    for every in (1, 2, 3):
        refilled, scheduler = served(engine, texts, "refill", arrive_every=every)
        assert refilled == one_batch, every
        shared.append(scheduler.rows_per_call.values().max())
    assert len({layer for _, layer in one_batch}) > 1  # rows exit at several depths
    assert max(shared) > 1, shared  # rows admitted apart shared layer calls
    for mode in ("shrink",):
        assert served(engine, texts, mode)[0] == one_batch
    for every in (1, 3):  # bulk admission, a cap on cohorts, the fullest cohort first
        refilled, scheduler = served(engine, texts, "refill", every, admission=BULK)
        assert refilled == one_batch, every


@pytest.mark.parametrize("name", ["joint", "sledgehammer"])
def test_an_onnx_export_is_refilled_as_the_torch_engine_is(serving_runs, name, tmp_path):
    """The cohort is the walk of both engines: an export on ONNX Runtime, refilled (its
    mix states joined on numpy for Sledgehammer), answers as it does in one batch."""
    pytest.importorskip("onnxruntime")
    from early_exit.inference.onnx_export import export_run
    from early_exit.inference.ort_engine import OrtEngine

    runs, texts = serving_runs
    engine = OrtEngine.from_dir(export_run(runs[name], tmp_path / "export"), device="cpu")
    engine.knob = knob(engine, texts)
    one_batch = engine_answers(engine, texts, 64)
    assert len({layer for _, layer in one_batch}) > 1  # rows exit at several depths
    shared = []
    for every in (1, 3):
        refilled, scheduler = served(engine, texts, "refill", arrive_every=every)
        assert refilled == one_batch, every
        shared.append(scheduler.rows_per_call.values().max())
    assert max(shared) > 1, shared  # rows admitted apart shared layer calls
    refilled, _ = served(engine, texts, "refill", 1, admission=BULK)
    assert refilled == one_batch


@pytest.mark.parametrize("admission", [None, BULK], ids=["eager", "bulk"])
def test_a_deep_row_is_not_starved(serving_runs, admission):
    """A stream that keeps arriving at layer 0 does not hold back a deeper cohort: every
    request answers within the bound L * (max_wait + C) ticks of its admission (C: the
    most cohorts live, at most L), and waits a bounded time to be admitted."""
    runs, texts = serving_runs
    engine = EarlyExitEngine.from_run(runs["joint"], device="cpu")
    policy = engine.policy("entropy", 0.0)  # never fires early: every row goes to the end
    layers, max_wait = engine.exit_layers[-1], 2
    cohorts = layers if admission is None else min(layers, admission.cohorts)
    scheduler = Scheduler(engine, policy, "refill", 64, max_wait, admission)
    features, truncated = engine.encode(texts * 3)
    jobs, submitted, admitted, finished = [], {}, {}, {}

    def tick():
        scheduler.tick()
        for i, job in enumerate(jobs):
            if job.admitted is not None and i not in admitted:
                admitted[i] = scheduler.ticks - 1  # admitted during that tick

    for i, feature in enumerate(features):  # one new request every tick
        jobs.append(
            Job(
                [feature],
                truncated[[i]],
                lambda a, e, i=i: finished.__setitem__(i, scheduler.ticks),
            )
        )
        submitted[i] = scheduler.ticks
        scheduler.submit(jobs[-1])
        tick()
    for _ in range(1000):
        if scheduler.idle():
            break
        tick()
    assert len(finished) == len(features)
    waits = np.array([finished[i] - admitted[i] for i in finished])
    assert waits.max() <= layers * (max_wait + cohorts)
    queued = np.array([admitted[i] - submitted[i] for i in finished])
    assert queued.max() <= layers * (max_wait + cohorts)  # cohorts finish, slots free
