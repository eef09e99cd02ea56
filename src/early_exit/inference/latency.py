"""Measured wall-clock speed-up of real early exiting (the workflow's latency stage).

The sweeps report the *layer* speed-up L / avg_exit_layer, derived from stored
logits. Here the engine (`inference.engine`) runs for real and is timed: at the knob
chosen on dev for the method's own criterion, at two other knob values (one faster,
one closer to full depth, picked from the dev sweep), and at full depth (the last
exit only), each at every configured batch size. Each batch size is first run `warmup`
times untimed (at full depth, the first setting), then every setting `repeats` times
timed; the table gives the median and the min/max over repeats. Measured speed-up =
median time at full depth / median time of the setting, at the same batch size; its
ratio to the layer speed-up actually taken says how much of the saving in layers
survives as saving in time (1 is the physical limit).

Timing uses a fixed-size, deterministic subset of the test split (the first
`examples` examples in file order): enough to reach the steady state of per-layer
costs while keeping the stage to seconds per run. One job times every run, alone on
the machine (all cores).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from early_exit.data.prepared import load_split
from early_exit.exits.operating_points import (
    chosen_knob,
    load_operating_points,
    load_sweeps,
)
from early_exit.inference.engine import EarlyExitEngine
from early_exit.support.atomic import atomic_path
from early_exit.support.errors import DataError
from early_exit.training.batching import encode

log = logging.getLogger(__name__)

FULL = "full"  # every layer, the last exit only: the reference for measured speed-up


def other_knobs(dev_sweep: pd.DataFrame, chosen: float) -> list[float]:
    """Two knob values besides the chosen one: the dev-sweep knobs whose layer speed-up
    lies nearest halfway to the fastest, and halfway back to full depth."""
    at = dev_sweep.loc[np.isclose(dev_sweep.threshold, chosen), "speedup"].iloc[0]
    targets = ((at + dev_sweep.speedup.max()) / 2, (at + dev_sweep.speedup.min()) / 2)
    rest = dev_sweep[~np.isclose(dev_sweep.threshold, chosen)]
    knobs = []
    for target in targets:
        free = rest[~rest.threshold.isin(knobs)]
        if not free.empty:
            knobs.append(float(free.threshold.iloc[(free.speedup - target).abs().argmin()]))
    return knobs


def knob_values(points_path: Path, sweep_path: Path, policy: str, run_key: dict) -> list[float]:
    """The knob chosen on dev (from the operating points), then two others from the sweep."""
    points = load_operating_points(points_path)
    chosen = chosen_knob(points, run_key["task"], run_key["method"], run_key["seed"], policy)
    if chosen is None:
        raise DataError(f"{points_path}: no operating point for {run_key} under {policy}")
    sweeps = load_sweeps([sweep_path])
    dev = sweeps[(sweeps.policy == policy) & (sweeps.split == "dev")]
    return [chosen, *other_knobs(dev, chosen)]


def time_setting(engine, features, rule, batch_size: int, warmup: int, repeats: int):
    """Seconds per pass over `features` for each timed repeat, and the last decisions."""
    for _ in range(warmup):
        engine.run(features, rule, batch_size)
    seconds = []
    for _ in range(repeats):
        if engine.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        decisions = engine.run(features, rule, batch_size)
        if engine.device.type == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return np.array(seconds), decisions


def measure(
    engine: EarlyExitEngine,
    features: list[dict],
    settings: list[tuple[str, float]],
    batch_sizes: list[int],
    warmup: int = 1,
    repeats: int = 3,
    options: dict | None = None,
) -> pd.DataFrame:
    """One row per (setting, batch size); `settings` are (policy, knob) pairs, FULL first."""
    rows = []
    num_layers = engine.model.num_layers
    for batch_size in batch_sizes:
        full_median = None
        for i, (policy, knob) in enumerate(settings):
            rule = None if policy == FULL else engine.policy(policy, knob, **(options or {}))
            # warm up once per batch size: later settings run the same layers and heads
            warm = warmup if i == 0 else 0
            seconds, decisions = time_setting(engine, features, rule, batch_size, warm, repeats)
            per_example = seconds / len(features) * 1e3
            median = float(np.median(seconds))
            full_median = median if policy == FULL else full_median
            layer_speedup = num_layers / np.array(engine.exit_layers)[decisions.exit_index].mean()
            measured = full_median / median
            rows.append(
                {
                    "policy": policy,
                    "knob": knob,
                    "batch_size": batch_size,
                    "examples": len(features),
                    "repeats": repeats,
                    "examples_per_s": len(features) / median,
                    "ms_per_example": float(np.median(per_example)),
                    "ms_min": float(per_example.min()),
                    "ms_max": float(per_example.max()),
                    "measured_speedup": measured,
                    "layer_speedup": layer_speedup,
                    "ratio": measured / layer_speedup,
                    "device": str(engine.device),
                    "threads": torch.get_num_threads(),
                }
            )
    return pd.DataFrame(rows)


def latency_file(
    run_dir: Path,
    data_dir: Path,
    out_path: Path,
    policy: str,
    run_key: dict,
    points_path: Path,
    settings: dict | None = None,
    device: str = "auto",
    threads: int | None = None,
    options: dict | None = None,
) -> pd.DataFrame:
    """Time one run and write its latency table (`run_key`: task, method, seed columns)."""
    settings = {"examples": 32, "warmup": 1, "repeats": 3, "batch_sizes": [1, 32]} | (
        settings or {}
    )
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    engine = EarlyExitEngine.from_run(run_dir, device=device)
    examples = load_split(data_dir, "test")[: settings["examples"]]
    features = encode(examples, engine.tokenizer, engine.max_length).features
    knobs = knob_values(points_path, Path(run_dir) / "sweep.tsv", policy, run_key)
    grid = [(FULL, float("nan"))] + [(policy, k) for k in knobs]
    table = measure(
        engine,
        features,
        grid,
        settings["batch_sizes"],
        settings["warmup"],
        settings["repeats"],
        options,
    )
    table.insert(
        0,
        "chosen_on_dev",
        [p != FULL and k == knobs[0] for p, k in zip(table.policy, table.knob, strict=True)],
    )
    for i, (key, value) in enumerate(run_key.items()):
        table.insert(i, key, value)
    with atomic_path(Path(out_path)) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    return table


def time_runs(
    runs: list[dict],
    out_paths: list[Path],
    points_path: Path,
    settings: dict | None = None,
    device: str = "auto",
    threads: int | None = None,
) -> None:
    """Time every run, one after the other in this process, writing each one's table.

    A run is a dict with `run_dir`, `data_dir`, `policy`, `run_key` (task, method, seed)
    and `options` (the criterion's, e.g. patience's tau)."""
    for run, out_path in zip(runs, out_paths, strict=True):
        log.info("timing %s under %s", run["run_dir"], run["policy"])
        latency_file(
            run["run_dir"],
            run["data_dir"],
            out_path,
            run["policy"],
            run["run_key"],
            points_path,
            settings,
            device,
            threads,
            run.get("options"),
        )
