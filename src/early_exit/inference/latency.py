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

Both engines are timed (`onnxruntime`, default on): the run on torch
(`inference.engine`) and its ONNX export (`early-exit export`, made afresh in a scratch
directory) on ONNX Runtime (`inference.ort_engine`), with the same policies, knobs,
examples and threads, in the same rounds: every (setting, engine) pair once per round,
so `time_vs_torch` (an engine's time over torch's at the same setting) is paired too.
Each engine's speed-up is over its own full depth; the table's `engine` column says
which, and the full-depth check compares runs engine by engine.

These curves use a fixed-size, deterministic subset of the test split (the first
`examples` examples in file order). The knob chosen on dev is also run over *every* test
example (`inference.whole_split`, settings `latency.whole_split`): timed at full depth and
at the knob in interleaved rounds of one batch each, the engine's exits and answers
checked against the stored outputs' (the stage fails beyond the bound), and the measured
speed-up with its interval written beside the layer speed-up of the same examples
(`results/analysis/measured_speedup.tsv`, what the results tables, the method slides and
the README's headline show). One job times every run, alone on the machine (all cores);
the stage's time is in docs/performance.md.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from early_exit.data.prepared import load_split
from early_exit.exits.operating_points import knob_for, load_sweeps
from early_exit.exits.policies import Outputs
from early_exit.exits.stored import load_exit_logits
from early_exit.inference.engine import EarlyExitEngine
from early_exit.inference.ort_engine import load_export
from early_exit.inference.whole_split import FULL, WholeSplitSettings, time_split
from early_exit.support.tables import write_table
from early_exit.training.batching import encode

log = logging.getLogger(__name__)

TORCH, ORT = "torch", "onnxruntime"  # the engines: the run on torch, its export on ORT


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
    chosen = knob_for(None, policy, key=run_key, points=points_path, fallback=False)
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
    """What waits for the torch engine's device before a clock reading (None on the CPU;
    ONNX Runtime's `run` returns when its outputs are ready)."""
    device = getattr(engine, "device", None)
    return torch.cuda.synchronize if getattr(device, "type", None) == "cuda" else None


def engine_passes(engines: dict, features, rules: dict, batch_size: int, decisions: dict) -> dict:
    """One pass over `features` per (engine, rule position), setting by setting and, within
    a setting, engine by engine (so both engines' times of one setting sit side by side in
    every round); `rules` gives each engine's runtime rules (None: full depth). Each pass
    leaves its decisions in `decisions` under its key."""

    def one(key, engine, rule):
        def run():
            decisions[key] = engine.run(features, rule, batch_size)

        return run

    count = len(next(iter(rules.values())))
    return {
        (name, i): one((name, i), engines[name], rules[name][i])
        for i in range(count)
        for name in engines
    }


def measure(
    engines: dict,
    features: list[dict],
    settings: list[tuple[str, float]],
    batch_sizes: list[int],
    warmup: int,
    repeats: int,
    options: dict | None = None,
    threads: int | None = None,
) -> pd.DataFrame:
    """One row per (engine, setting, batch size); `engines` maps a name (TORCH first,
    then ORT) to an engine of one run; `settings` are (policy, knob) pairs, FULL first.

    Per batch size, every engine's full depth runs `warmup` times untimed, then every
    (setting, engine) pair is timed in interleaved rounds (`interleaved`). An engine's
    measured speed-up in a round is its own full-depth time of that round over its time
    at the setting; `time_vs_torch` is, per round, its time over the torch engine's at the
    same setting (engines compared paired within rounds, like the settings)."""
    if not settings or settings[0][0] != FULL:
        raise ValueError("measure: the first setting must be full depth, the reference")
    if next(iter(engines)) != TORCH:
        raise ValueError("measure: the torch engine comes first, the reference")
    rows = []
    rules = {
        name: [None if p == FULL else e.policy(p, k, **(options or {})) for p, k in settings]
        for name, e in engines.items()
    }
    sync = device_sync(engines[TORCH])
    for batch_size in batch_sizes:
        decisions = {}
        passes = engine_passes(engines, features, rules, batch_size, decisions)
        for name in engines:
            for _ in range(warmup):
                passes[(name, 0)]()
        seconds = interleaved(passes, repeats, 0, sync)
        for name, i in ((name, i) for name in engines for i in range(len(settings))):
            policy, knob, times = *settings[i], seconds[(name, i)]
            engine = engines[name]
            per_example = times / len(features) * 1e3
            speedups = seconds[(name, 0)] / times  # per round: full depth over this setting
            exits = np.array(engine.exit_layers)[decisions[(name, i)].exit_index]
            layer_speedup = engine.num_layers / exits.mean()
            measured = float(np.median(speedups))
            rows.append(
                {
                    "engine": name,
                    "policy": policy,
                    "knob": knob,
                    "batch_size": batch_size,
                    "examples": len(features),
                    "repeats": repeats,
                    "examples_per_s": len(features) / float(np.median(times)),
                    "ms_per_example": float(np.median(per_example)),
                    "ms_min": float(per_example.min()),
                    "ms_max": float(per_example.max()),
                    "measured_speedup": measured,
                    "speedup_min": float(speedups.min()),
                    "speedup_max": float(speedups.max()),
                    "layer_speedup": layer_speedup,
                    "ratio": measured / layer_speedup,
                    "time_vs_torch": float(np.median(times / seconds[(TORCH, i)])),
                    "device": str(engine.device),
                    "threads": threads or torch.get_num_threads(),
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
        [t.loc[t.policy == FULL, ["task", "method", "seed", "engine", "architecture",
                                  "batch_size", "ms_per_example"]] for t in tables],
        ignore_index=True,
    )  # fmt: skip
    keys = ["task", "engine", "architecture", "batch_size"]
    groups = full.groupby(keys)
    spread = groups.ms_per_example.agg(lambda ms: ms.max() / ms.min())
    for (task, engine, arch, batch_size), value in spread.items():
        if value > 1 + tolerance:
            part = groups.get_group((task, engine, arch, batch_size))
            times = ", ".join(
                f"{m} seed {s} {ms:.2f}"
                for m, s, ms in zip(part.method, part.seed, part.ms_per_example, strict=True)
            )
            log.warning(
                "full depth disagrees: %s, %s engine, batch size %d, %s: %s ms per example "
                "(slowest / fastest %.2f > 1 + tolerance %.2f); the machine's speed changed "
                "while the stage ran: these runs' times are not comparable with each other "
                "(each speed-up is paired within its own rounds; see its spread)",
                task, engine, batch_size, arch, times, value, tolerance,
            )  # fmt: skip
    out = []
    for table in tables:
        values = [float(spread[key]) for key in table[keys].itertuples(index=False, name=None)]
        table = table.copy()
        table["full_depth_spread"] = values
        table["full_depth_disagrees"] = [v > 1 + tolerance for v in values]
        out.append(table)
    return out


@dataclass(frozen=True)
class LatencySettings:
    """The config's `latency:` section, typed (its defaults are written only here:
    tests/architecture/test_one_place.py checks the schema's against them)."""

    examples: int = 32
    """The curves time the first `examples` test examples (in file order)."""
    warmup: int = 1
    """Untimed passes at full depth per batch size, before the timed rounds."""
    repeats: int = 4
    """Timed rounds; each round times every setting once (`interleaved`)."""
    batch_sizes: tuple[int, ...] = (1, 32)
    """The batch sizes of the curves."""
    full_depth_tolerance: float = 0.1
    """Largest relative difference between the full-depth times of two runs of one task
    and architecture at one batch size before they are flagged (`full_depth_check`)."""
    onnxruntime: bool = True
    """Also time each run's ONNX export on the ONNX Runtime engine, in the same rounds."""
    whole_split: WholeSplitSettings = field(default_factory=WholeSplitSettings)
    """The knob chosen on dev over every test example (`inference.whole_split`)."""

    @classmethod
    def from_config(cls, section: dict | None) -> LatencySettings:
        """The settings of a (validated) `latency:` section; None: the defaults."""
        section = dict(section or {})
        if "batch_sizes" in section:
            section["batch_sizes"] = tuple(section["batch_sizes"])
        whole = WholeSplitSettings.from_config(section.pop("whole_split", None))
        return cls(**section, whole_split=whole)

    def replace(self, **changes) -> LatencySettings:
        return dataclasses.replace(self, **changes)


def load_engines(
    run_dir: Path, onnxruntime: bool, device: str, threads: int | None, scratch: Path
) -> dict:
    """The run on the torch engine and, with `onnxruntime`, its export (`early-exit
    export`, written to `scratch`: the stage times what a user would deploy, exported
    afresh from the same checkpoint) on the ONNX Runtime engine with the same threads."""
    engines = {TORCH: EarlyExitEngine.from_run(run_dir, device=device)}
    if onnxruntime:
        started = time.perf_counter()
        # ONNX Runtime on CUDA needs the onnxruntime-gpu build: without it, CPU (logged)
        engines[ORT] = load_export(run_dir, engines[TORCH], scratch, device, threads)
        log.info(
            "exported %s to ONNX in %.1f s; torch on %s, ONNX Runtime on %s", run_dir,
            time.perf_counter() - started, engines[TORCH].device, engines[ORT].device,
        )  # fmt: skip
    return engines


def time_run(
    run_dir: Path,
    data_dir: Path,
    policy: str,
    run_key: dict,
    points_path: Path,
    settings: LatencySettings = LatencySettings(),
    device: str = "auto",
    threads: int | None = None,
    options: dict | None = None,
    whole_split: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Time one run: its latency table (`run_key`: task, method, seed columns first) and,
    with `whole_split`, its rows of the knob chosen on dev over every test example
    (`inference.whole_split.time_split`; DataError when the engines disagree with the
    stored outputs beyond the bound)."""
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    knobs = knob_values(points_path, Path(run_dir) / "sweep.tsv", policy, run_key)
    grid = [(FULL, float("nan"))] + [(policy, k) for k in knobs]
    with tempfile.TemporaryDirectory(prefix="latency-export-") as scratch:
        engines = load_engines(run_dir, settings.onnxruntime, device, threads, Path(scratch))
        engine = engines[TORCH]
        examples = load_split(data_dir, "test")[: settings.examples]
        features = encode(examples, engine.tokenizer, engine.max_length).features
        table = measure(
            engines,
            features,
            grid,
            list(settings.batch_sizes),
            settings.warmup,
            settings.repeats,
            options,
            threads,
        )
        split = None
        if whole_split:
            out = test_outputs(Path(run_dir), engine)
            features = encode(load_split(data_dir, "test"), engine.tokenizer, engine.max_length)
            what = f"{run_dir} ({policy})"
            split = time_split(
                engines, features.features, out, policy, knobs[0], options,
                settings.whole_split, device_sync(engine), what,
            )  # fmt: skip
    table.insert(
        0,
        "chosen_on_dev",
        [p != FULL and k == knobs[0] for p, k in zip(table.policy, table.knob, strict=True)],
    )
    if split is not None:
        split["device"] = [str(engines[name].device) for name in split.engine]
        split["threads"] = threads or torch.get_num_threads()
    for frame in (table, split):
        if frame is None:
            continue
        for i, (key, value) in enumerate(run_key.items()):
            frame.insert(i, key, value)
        frame["architecture"] = architecture(engine.model)
    return table, split


def test_outputs(run_dir: Path, engine) -> Outputs:
    """The run's stored outputs of the test split, as the sweeps read them (the
    temperatures fitted on dev, a learned gate's scores)."""
    stored = load_exit_logits(run_dir / "exit_logits.npz")
    return Outputs(
        stored["test_logits"],
        stored["test_labels"],
        engine.task_type,
        engine.temperatures,
        stored.get("test_scores"),
    )


def latency_file(
    run_dir: Path,
    data_dir: Path,
    out_path: Path,
    policy: str,
    run_key: dict,
    points_path: Path,
    settings: LatencySettings = LatencySettings(),
    device: str = "auto",
    threads: int | None = None,
    options: dict | None = None,
    split_path: Path | None = None,
) -> pd.DataFrame:
    """Time one run and write its latency table (no peers: a full-depth spread of 1) and,
    with `split_path`, its whole-split table there."""
    table, split = time_run(
        run_dir, data_dir, policy, run_key, points_path, settings, device, threads, options,
        split_path is not None,
    )  # fmt: skip
    tolerance = settings.full_depth_tolerance
    (table,) = full_depth_check([table], tolerance)
    write_table(table, out_path)
    if split is not None:
        (split,) = full_depth_check([split], tolerance)
        write_table(split, split_path)
    return table


def time_runs(
    runs: list[dict],
    out_paths: list[Path],
    points_path: Path,
    settings: LatencySettings = LatencySettings(),
    device: str = "auto",
    threads: int | None = None,
    split_path: Path | None = None,
) -> None:
    """Time every run, one after the other in this process, then check that runs of one
    architecture agree at full depth (`full_depth_check`) and write each one's table; with
    `split_path`, every run's knob chosen on dev over the whole test split too, in one
    table there (`inference.whole_split`).

    A run is a dict with `run_dir`, `data_dir`, `policy`, `run_key` (task, method, seed)
    and `options` (the criterion's, e.g. patience's tau)."""
    start = time.perf_counter()
    tables, splits = [], []
    for run in runs:
        log.info("timing %s under %s", run["run_dir"], run["policy"])
        began = time.perf_counter()
        table, split = time_run(
            run["run_dir"],
            run["data_dir"],
            run["policy"],
            run["run_key"],
            points_path,
            settings,
            device,
            threads,
            run.get("options"),
            split_path is not None,
        )
        tables.append(table)
        if split is not None:
            splits.append(split)
            knob = split[split.policy != FULL]
            log.info(
                "%s: whole test split (%d examples): %s; %.1f s for the run",
                run["run_dir"], int(knob.examples.iloc[0]),
                "; ".join(
                    f"{r.engine} measured {r.measured_speedup:.2f}x [{r.speedup_lo:.2f}, "
                    f"{r.speedup_hi:.2f}] at layer {r.layer_speedup:.2f}x, {r.differ} differ "
                    f"({r.tolerated} near the knob)"
                    for r in knob.itertuples()
                ),
                time.perf_counter() - began,
            )  # fmt: skip
    tolerance = settings.full_depth_tolerance
    for table, out_path in zip(full_depth_check(tables, tolerance), out_paths, strict=True):
        write_table(table, out_path)
    if split_path is not None:
        write_table(pd.concat(full_depth_check(splits, tolerance), ignore_index=True), split_path)
    log.info("timed %d runs in %.1f s", len(runs), time.perf_counter() - start)
