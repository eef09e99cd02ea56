"""Measured wall-clock speed-up of real early exiting (the workflow's latency stage).

The sweeps report the *layer* speed-up L / avg_exit_layer, derived from stored
logits. Here the engine (`inference.engine`) runs for real and is timed: at the knob
chosen on dev for the method's own criterion, at two other knob values (one faster,
one closer to full depth, picked from the dev sweep), and at full depth (the last
exit only), each at every configured batch size.

Timings are interleaved, so that a machine that drifts (another job starting, the
clock changing) moves every setting alike instead of landing in the ratios: per batch
size, `warmup` untimed passes at full depth, then `repeats` rounds, each timing every
setting once, in alternating order (full depth first, then the knobs; the next round
the other way round, ...; `interleaved`). A setting's measured speed-up is, per round,
the full-depth time of that round over its own, and the table gives its median over
rounds with the min and max (`speedup_min`, `speedup_max`): the spread of the speed-up
itself, not only of the times. Its ratio to the layer speed-up actually taken says how
much of the saving in layers survives as saving in time (1 is the physical limit).

Runs of the same architecture (same encoder shape) do the same work at full depth, so
their full-depth times should agree; `full_depth_check` flags, in the table
(`full_depth_spread`, `full_depth_disagrees`) and as a warning in the log, when two of
them differ by more than `full_depth_tolerance` (a relative difference): the machine's
speed changed while the stage ran, so times of different runs are not comparable (a
speed-up, paired within rounds, is as trustworthy as its own spread says).

Timing uses a fixed-size, deterministic subset of the test split (the first
`examples` examples in file order). One job times every run, alone on the machine (all
cores); the stage's time is in docs/performance.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
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
from early_exit.support.errors import DataError
from early_exit.support.tables import write_table
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


def interleaved(
    passes: dict[object, Callable[[], object]],
    repeats: int,
    warmup: int = 0,
    sync: Callable[[], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, np.ndarray]:
    """Seconds of every pass in every round, [repeats] per pass.

    The first pass is first run `warmup` times untimed. Round r runs the passes in their
    order when r is even and in reverse when r is odd (A B C, C B A, A B C, ...), so over
    two rounds every pass sits at the same mean position and a steady drift of the
    machine moves all of them alike. `sync` (e.g. torch.cuda.synchronize) runs before
    each clock reading; `clock` reads seconds."""
    sync = sync or (lambda: None)
    names = list(passes)
    first = passes[names[0]]
    for _ in range(warmup):
        first()
    seconds = {name: np.zeros(repeats) for name in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            sync()
            start = clock()
            passes[name]()
            sync()
            seconds[name][r] = clock() - start
    return seconds


def device_sync(engine) -> Callable[[], None] | None:
    """What waits for the engine's device before a clock reading (None on the CPU)."""
    return torch.cuda.synchronize if engine.device.type == "cuda" else None


def engine_passes(engine, features, rules, batch_size: int, decisions: dict) -> dict:
    """One pass of the engine over `features` per rule (None: full depth), keyed by the
    rule's position; each pass leaves its decisions in `decisions` under that key."""

    def one(key, rule):
        def run():
            decisions[key] = engine.run(features, rule, batch_size)

        return run

    return {key: one(key, rule) for key, rule in enumerate(rules)}


def measure(
    engine: EarlyExitEngine,
    features: list[dict],
    settings: list[tuple[str, float]],
    batch_sizes: list[int],
    warmup: int = 1,
    repeats: int = 3,
    options: dict | None = None,
) -> pd.DataFrame:
    """One row per (setting, batch size); `settings` are (policy, knob) pairs, FULL first.

    Per batch size the settings are timed in interleaved rounds (`interleaved`); the
    measured speed-up of a setting in a round is that round's full-depth time over its."""
    if not settings or settings[0][0] != FULL:
        raise ValueError("measure: the first setting must be full depth, the reference")
    rows = []
    num_layers = engine.model.num_layers
    rules = [None if p == FULL else engine.policy(p, k, **(options or {})) for p, k in settings]
    for batch_size in batch_sizes:
        decisions = {}
        passes = engine_passes(engine, features, rules, batch_size, decisions)
        seconds = interleaved(passes, repeats, warmup, device_sync(engine))
        full = seconds[0]
        for i, (policy, knob) in enumerate(settings):
            per_example = seconds[i] / len(features) * 1e3
            speedups = full / seconds[i]  # per round: that round's full-depth time over this
            exits = np.array(engine.exit_layers)[decisions[i].exit_index]
            layer_speedup = num_layers / exits.mean()
            measured = float(np.median(speedups))
            rows.append(
                {
                    "policy": policy,
                    "knob": knob,
                    "batch_size": batch_size,
                    "examples": len(features),
                    "repeats": repeats,
                    "examples_per_s": len(features) / float(np.median(seconds[i])),
                    "ms_per_example": float(np.median(per_example)),
                    "ms_min": float(per_example.min()),
                    "ms_max": float(per_example.max()),
                    "measured_speedup": measured,
                    "speedup_min": float(speedups.min()),
                    "speedup_max": float(speedups.max()),
                    "layer_speedup": layer_speedup,
                    "ratio": measured / layer_speedup,
                    "device": str(engine.device),
                    "threads": torch.get_num_threads(),
                }
            )
    return pd.DataFrame(rows)


def architecture(model) -> str:
    """What full depth costs depends on: the encoder's class, depth and parameter count
    (a pruned encoder differs in the last), e.g. "BertModel, 6 layers, 22713216 parameters",
    and whether every layer feeds a head on the way (Sledgehammer's layer mix)."""
    encoder = model.encoder
    params = sum(p.numel() for p in encoder.parameters())
    name = f"{type(encoder).__name__}, {model.num_layers} layers, {params} parameters"
    return name + (", layer-mix heads" if model.cfg.head == "layer_mix" else "")


def full_depth_check(tables: list[pd.DataFrame], tolerance: float) -> list[pd.DataFrame]:
    """Add `full_depth_spread` and `full_depth_disagrees` to every run's table.

    Runs of one task and architecture do the same work at full depth: per batch size,
    spread = slowest / fastest full-depth time (ms per example) among them (1.0 for a run
    without a peer), and they disagree when spread > 1 + tolerance. Each disagreement is
    logged as a warning naming the runs and their times."""
    full = pd.concat(
        [t.loc[t.policy == FULL, ["task", "method", "seed", "architecture", "batch_size",
                                  "ms_per_example"]] for t in tables],
        ignore_index=True,
    )  # fmt: skip
    keys = ["task", "architecture", "batch_size"]
    spread = full.groupby(keys).ms_per_example.agg(lambda ms: ms.max() / ms.min())
    for (task, arch, batch_size), value in spread.items():
        if value > 1 + tolerance:
            part = full[
                (full.task == task) & (full.architecture == arch) & (full.batch_size == batch_size)
            ]
            times = ", ".join(
                f"{m} seed {s} {ms:.2f}"
                for m, s, ms in zip(part.method, part.seed, part.ms_per_example, strict=True)
            )
            log.warning(
                "full depth disagrees: %s, batch size %d, %s: %s ms per example (slowest / "
                "fastest %.2f > 1 + tolerance %.2f); the machine's speed changed while the "
                "stage ran: these runs' times are not comparable with each other (each "
                "speed-up is paired within its own rounds; see its spread)",
                task, batch_size, arch, times, value, tolerance,
            )  # fmt: skip
    out = []
    for table in tables:
        values = [
            float(spread[(task, arch, b)])
            for task, arch, b in zip(table.task, table.architecture, table.batch_size, strict=True)
        ]
        table = table.copy()
        table["full_depth_spread"] = values
        table["full_depth_disagrees"] = [v > 1 + tolerance for v in values]
        out.append(table)
    return out


DEFAULTS = {
    "examples": 32,
    "warmup": 1,
    "repeats": 4,
    "batch_sizes": [1, 32],
    "full_depth_tolerance": 0.1,
}


def time_run(
    run_dir: Path,
    data_dir: Path,
    policy: str,
    run_key: dict,
    points_path: Path,
    settings: dict | None = None,
    device: str = "auto",
    threads: int | None = None,
    options: dict | None = None,
) -> pd.DataFrame:
    """Time one run: its latency table (`run_key`: task, method, seed columns first)."""
    settings = DEFAULTS | (settings or {})
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
    table["architecture"] = architecture(engine.model)
    return table


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
    """Time one run and write its latency table (no peers: a full-depth spread of 1)."""
    table = time_run(
        run_dir, data_dir, policy, run_key, points_path, settings, device, threads, options
    )
    tolerance = (DEFAULTS | (settings or {}))["full_depth_tolerance"]
    (table,) = full_depth_check([table], tolerance)
    write_table(table, out_path)
    return table


def time_runs(
    runs: list[dict],
    out_paths: list[Path],
    points_path: Path,
    settings: dict | None = None,
    device: str = "auto",
    threads: int | None = None,
) -> None:
    """Time every run, one after the other in this process, then check that runs of one
    architecture agree at full depth (`full_depth_check`) and write each one's table.

    A run is a dict with `run_dir`, `data_dir`, `policy`, `run_key` (task, method, seed)
    and `options` (the criterion's, e.g. patience's tau)."""
    start = time.perf_counter()
    tables = []
    for run in runs:
        log.info("timing %s under %s", run["run_dir"], run["policy"])
        tables.append(
            time_run(
                run["run_dir"],
                run["data_dir"],
                run["policy"],
                run["run_key"],
                points_path,
                settings,
                device,
                threads,
                run.get("options"),
            )
        )
    tolerance = (DEFAULTS | (settings or {}))["full_depth_tolerance"]
    for table, out_path in zip(full_depth_check(tables, tolerance), out_paths, strict=True):
        write_table(table, out_path)
    log.info("timed %d runs in %.1f s", len(runs), time.perf_counter() - start)
