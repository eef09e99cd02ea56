"""The knob chosen on dev over every test example: timed for real, and checked against
the stored outputs the results tables simulate from.

The results tables report a *layer* speed-up (L / mean exit layer) over the whole test
split, simulated from stored outputs; this part of the latency stage runs the engines
(torch, and ONNX Runtime where exported) over the same examples at the same knob and
reports the *measured* wall-clock speed-up beside it, on the same examples:

- every test example once per repeat, in the engine's own length-sorted batches of
  `batch_size` (what a run over the whole split at that batch size computes);
- each batch is a round: full depth and the knob, on every engine, timed back to back in
  alternating order (A B C D, D C B A, ...), so a machine whose speed drifts moves both
  sides of a round alike (`latency.interleaved`);
- the measured speed-up is the split's time at full depth over its time at the knob (sums
  over rounds: every example counts once), with a 95% percentile bootstrap interval over
  rounds (`speedup_interval`, `scipy.stats.bootstrap` paired: full-depth and knob times
  of a round are resampled together). Rounds hold different examples, so the interval
  covers both the machine's noise and which examples the split holds; the ratio to the
  layer speed-up of the same resampled rounds (`ratio_lo`, `ratio_hi`) takes the
  examples' share out of it;
- the engine's exits and answers at the knob, from the timed passes themselves, are
  compared with the simulation's (`inference.agreement`): near-knob differences are
  counted (`differ`, `tolerated`) and bounded; beyond the bound the stage fails.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from early_exit.exits.policies import Outputs
from early_exit.inference.agreement import MAX_TOLERATED, TOLERANCE, compare
from early_exit.training.batching import sorted_batches

FULL = "full"  # every layer, the last exit only: the reference for measured speed-up
CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0  # the bootstrap's resamples: the same interval from the same times


@dataclass(frozen=True)
class WholeSplitSettings:
    """The config's `latency.whole_split` section, typed (its defaults are written only
    here: tests/architecture/test_one_place.py checks the schema's against them)."""

    batch_size: int = 32
    """Rows per batch, and per timed round."""
    repeats: int = 1
    """Times every test example is timed at each setting (rounds add up per batch)."""
    warmup: int = 1
    """Untimed passes of the first batch at full depth, per engine."""
    tolerance: float = TOLERANCE
    """An example may differ from the stored outputs only where they put it this close to
    a decision (a score at the knob, top two logits)."""
    max_tolerated: float = MAX_TOLERATED
    """The largest share of the test examples allowed to differ near the knob."""

    @classmethod
    def from_config(cls, section: dict | None) -> WholeSplitSettings:
        """The settings of a (validated) `latency.whole_split` section; None: the defaults."""
        return cls(**(section or {}))

    def replace(self, **changes) -> WholeSplitSettings:
        return dataclasses.replace(self, **changes)


def _ratio_of_sums(full, knob, axis=-1):
    return full.sum(axis) / knob.sum(axis)


def _both(full, knob, full_layers, knob_layers, axis=-1):
    measured = _ratio_of_sums(full, knob, axis)
    return np.stack([measured, measured / _ratio_of_sums(full_layers, knob_layers, axis)])


def speedup_interval(
    full: np.ndarray,
    knob: np.ndarray,
    full_layers: np.ndarray,
    knob_layers: np.ndarray,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> dict[str, float]:
    """Per round r: seconds at full depth and at the knob, and layers run at each (L x
    rows, the sum of the rows' exit layers). The measured speed-up sum(full) / sum(knob),
    the layer speed-up sum(full_layers) / sum(knob_layers), their ratio, and percentile
    bootstrap intervals over rounds (rounds resampled with all four values together).
    With fewer than two rounds the intervals are NaN."""
    full, knob = np.asarray(full, float), np.asarray(knob, float)
    full_layers, knob_layers = np.asarray(full_layers, float), np.asarray(knob_layers, float)
    measured, ratio = _both(full, knob, full_layers, knob_layers)
    out = {
        "measured_speedup": float(measured),
        "layer_speedup": float(_ratio_of_sums(full_layers, knob_layers)),
        "ratio": float(ratio),
        "speedup_lo": np.nan,
        "speedup_hi": np.nan,
        "ratio_lo": np.nan,
        "ratio_hi": np.nan,
    }
    if len(full) < 2:
        return out
    result = stats.bootstrap(
        (full, knob, full_layers, knob_layers),
        _both,
        paired=True,
        vectorized=True,
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    (lo, ratio_lo), (hi, ratio_hi) = result.confidence_interval
    return out | {
        "speedup_lo": float(lo),
        "speedup_hi": float(hi),
        "ratio_lo": float(ratio_lo),
        "ratio_hi": float(ratio_hi),
    }


def batch_rounds(
    engines: dict,
    features: list[dict],
    rules: dict[str, list],
    batch_size: int,
    repeats: int,
    warmup: int,
    sync: Callable[[], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[dict, dict, list[np.ndarray]]:
    """Time every (setting, engine) on every length-sorted batch of `features`, one batch
    a round, in alternating order; `rules[name]` are an engine's runtime rules, setting by
    setting (None: full depth, first).

    Returns (seconds, decisions, batches): seconds[(name, i)] is [rounds] per batch (summed
    over `repeats`), decisions[(name, i)] the (exit index, logits) of every example in
    input order, batches the example indices of each round."""
    sync = sync or (lambda: None)
    lengths = np.array([len(f["input_ids"]) for f in features])
    batches = sorted_batches(lengths, batch_size)
    count = len(next(iter(rules.values())))
    keys = [(name, i) for i in range(count) for name in engines]
    seconds = {key: np.zeros(len(batches)) for key in keys}
    decisions = {}
    for name, engine in engines.items():  # untimed: first calls allocate and warm caches
        for _ in range(warmup):
            engine.run([features[j] for j in batches[0]], rules[name][0], batch_size)
    r = 0
    for _ in range(repeats):
        for b, rows in enumerate(batches):
            part = [features[j] for j in rows]
            for key in keys if r % 2 == 0 else keys[::-1]:
                name, i = key
                sync()
                start = clock()
                got = engines[name].run(part, rules[name][i], batch_size)
                sync()
                seconds[key][b] += clock() - start
                if key not in decisions:
                    decisions[key] = (
                        np.zeros(len(features), np.int64),
                        np.zeros((len(features), got.logits.shape[1]), np.float32),
                    )
                decisions[key][0][rows] = got.exit_index
                decisions[key][1][rows] = got.logits
            r += 1
    return seconds, decisions, batches


def time_split(
    engines: dict,
    features: list[dict],
    out: Outputs,
    policy: str,
    knob: float,
    options: dict | None = None,
    settings: WholeSplitSettings = WholeSplitSettings(),
    sync: Callable[[], None] | None = None,
    what: str = "run",
) -> pd.DataFrame:
    """Time full depth and `policy` at `knob` over every example of `features` (the test
    split, whose stored outputs are `out`) on every engine, check each engine's decisions
    against the simulation's (DataError beyond the bound, naming `what` and the engine),
    and return one row per engine and setting (full depth: speed-ups 1)."""
    options = dict(options or {})
    rules = {
        name: [None, engine.policy(policy, knob, **options)] for name, engine in engines.items()
    }
    seconds, decisions, batches = batch_rounds(
        engines, features, rules, settings.batch_size, settings.repeats, settings.warmup, sync,
    )  # fmt: skip
    rows = []
    for name, engine in engines.items():
        exit_index, logits = decisions[(name, 1)]
        agreement = compare(out, policy, knob, options, exit_index, logits, settings.tolerance)
        agreement.check(f"{what}, {name} engine at {policy} {knob:g}", settings.max_tolerated)
        layers = np.asarray(engine.exit_layers)
        full_layers = np.array([engine.num_layers * len(b) for b in batches], float)
        stored_layers = np.array([layers[agreement.stored_exits[b]].sum() for b in batches], float)
        engine_layers = layers[exit_index]
        full_s, knob_s = seconds[(name, 0)], seconds[(name, 1)]
        numbers = speedup_interval(full_s, knob_s, full_layers, stored_layers)
        common = {
            "engine": name,
            "batch_size": settings.batch_size,
            "examples": len(features),
            "rounds": len(batches),
            "repeats": settings.repeats,
        }
        per = len(features) * settings.repeats
        rows.append(
            common
            | {
                "policy": FULL,
                "knob": float("nan"),
                "seconds": float(full_s.sum()),
                "ms_per_example": float(full_s.sum() / per * 1e3),
                "measured_speedup": 1.0,
                "speedup_lo": 1.0,
                "speedup_hi": 1.0,
                "layer_speedup": 1.0,
                "engine_layer_speedup": 1.0,
                "ratio": 1.0,
                "ratio_lo": 1.0,
                "ratio_hi": 1.0,
                "differ": 0,
                "tolerated": 0,
            }
        )
        rows.append(
            common
            | {
                "policy": policy,
                "knob": float(knob),
                "seconds": float(knob_s.sum()),
                "ms_per_example": float(knob_s.sum() / per * 1e3),
                **numbers,
                "engine_layer_speedup": float(engine.num_layers / engine_layers.mean()),
                "differ": agreement.differ,
                "tolerated": agreement.tolerated,
            }
        )
    columns = ["engine", "policy", "knob", "batch_size", "examples", "rounds", "repeats",
               "seconds", "ms_per_example", "measured_speedup", "speedup_lo", "speedup_hi",
               "layer_speedup", "engine_layer_speedup", "ratio", "ratio_lo", "ratio_hi",
               "differ", "tolerated"]  # fmt: skip
    return pd.DataFrame(rows)[columns]
