"""The refilling scheduler answers as the engine does, and starves no row."""

import numpy as np
import pytest

from early_exit.inference.engine import EarlyExitEngine
from early_exit.serving.scheduler import Job, Scheduler

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


def served(engine, texts, mode, arrive_every=1, max_batch=8, max_wait=4):
    """Submit one text per job, one job every `arrive_every` ticks; tick until all answer."""
    policy = engine.policy("entropy", engine.knob)
    scheduler = Scheduler(engine, policy, mode, max_batch=max_batch, max_wait=max_wait)
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


def test_a_deep_row_is_not_starved(serving_runs):
    """A stream that keeps arriving at layer 0 does not hold back a deeper cohort: every
    request answers within the bound L * (max_wait + L) ticks of admission."""
    runs, texts = serving_runs
    engine = EarlyExitEngine.from_run(runs["joint"], device="cpu")
    policy = engine.policy("entropy", 0.0)  # never fires early: every row goes to the end
    layers, max_wait = engine.exit_layers[-1], 2
    scheduler = Scheduler(engine, policy, "refill", max_batch=64, max_wait=max_wait)
    features, truncated = engine.encode(texts * 3)
    admitted, finished = {}, {}
    for i, feature in enumerate(features):  # one new request every tick
        admitted[i] = scheduler.ticks
        scheduler.submit(
            Job(
                [feature],
                truncated[[i]],
                lambda a, e, i=i: finished.__setitem__(i, scheduler.ticks),
            )
        )
        scheduler.tick()
    for _ in range(1000):
        if scheduler.idle():
            break
        scheduler.tick()
    waits = np.array([finished[i] - admitted[i] for i in admitted])
    assert waits.max() <= layers * (max_wait + layers)
