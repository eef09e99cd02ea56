"""What the latency stage's whole-split timing costs, beside the stage's curve on the first
test examples, on trained runs (read only: everything is written under --out).

    PYTHONPATH=src .venv/bin/python scripts/bench_whole_split.py \\
        results/bbc-news/elasticbert/seed13 --policy entropy --out /tmp/bench-split

For each run (laid out as the workflow writes it, `results/<task>/<method>/seed<n>`, with
its model and exit_logits.npz; the data next to `results/`), a mirror under --out links
the model and stored outputs and gets its own calibration, sweep (the default config's
settings for --policy) and operating point (max_drop 0.01, as rule operating_points
chooses), so nothing is written beside the run. Then, as rule latency does it, with the
threads given (default: all cores): the ONNX export and both engines are loaded (timed),
the stage's curve on the first test examples with the default config's `latency`
settings, once per --curve-repeats value (timed), and the knob chosen on dev over every test example
(`inference.whole_split.time_split`) at each --split setting (batch size x repeats;
timed; each with its agreement check). Prints one line per part with its wall and CPU
seconds and the load average after it, and the whole-split numbers; the whole-split rows go to
--out/measured_speedup.tsv (added to earlier calls' rows; `examples_run` names the setting).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

from early_exit.data.prepared import load_split
from early_exit.exits.calibration import calibrate_file
from early_exit.exits.operating_points import write_operating_points
from early_exit.exits.policies import get_policy
from early_exit.exits.sweep import sweep_file
from early_exit.inference.latency import (
    FULL,
    LatencySettings,
    architecture,
    device_sync,
    full_depth_check,
    knob_values,
    load_engines,
    measure,
    test_outputs,
)
from early_exit.inference.whole_split import time_split
from early_exit.support.layout import data_dir, parse_run_dir, results_root
from early_exit.support.tables import write_table
from early_exit.training.batching import encode

ROOT = Path(__file__).resolve().parents[1]


def mirror(run: Path, out: Path, policy: str, cfg: dict) -> tuple[Path, Path, dict]:
    """A copy of the run's layout under `out` (links to the model and stored outputs), with
    its calibration, sweep and operating points."""
    task, method, seed = parse_run_dir(run.resolve())
    data = results_root(run).parent / "data"
    out.mkdir(parents=True, exist_ok=True)
    (out / "data").exists() or (out / "data").symlink_to(data)
    target = out / "results" / task / method / f"seed{seed}"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("model", "exit_logits.npz"):
        (target / name).exists() or (target / name).symlink_to(run.resolve() / name)
    calibrate_file(target / "exit_logits.npz", target / "calibration.json")
    key = {"task": task, "method": method, "seed": str(seed)}
    policies = {policy: cfg["sweep"]["policies"].get(policy, {})}
    sweep_file(
        target / "exit_logits.npz", target / "sweep.tsv", policies, None, key,
        target / "calibration.json",
    )  # fmt: skip
    points = out / "results" / "analysis" / "operating_points.tsv"
    points.parent.mkdir(parents=True, exist_ok=True)
    sweeps = sorted((out / "results").glob("*/*/seed*/sweep.tsv"))
    write_operating_points(sweeps, cfg["analysis"]["max_drop"], points)
    return target, points, key


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


class Clock:
    """Wall seconds and this process's CPU seconds (all its threads) of a part: on a
    shared machine the wall time grows with the load, the CPU time much less."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu

    def __str__(self) -> str:
        return f"{self.wall:.1f} s wall, {self.cpu:.1f} s CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--policy", default="entropy", help="the methods' criterion")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-split"))
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--split", nargs="+", default=["32x1", "64x1"], help="BATCHxREPEATS")
    parser.add_argument(
        "--curve-repeats", nargs="*", type=int, default=None,
        help="rounds of the curve, one timing per value (default: the config's; none: skip)",
    )  # fmt: skip
    args = parser.parse_args()
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    settings = LatencySettings.from_config(cfg["latency"])
    torch.set_num_threads(args.threads)
    options = get_policy(args.policy).option_values(cfg["sweep"]["policies"].get(args.policy, {}))
    tables = []
    for run in args.runs:
        target, points, key = mirror(run, args.out, args.policy, cfg)
        knobs = knob_values(points, target / "sweep.tsv", args.policy, key)
        print(f"{run}: {args.policy} {knobs[0]:g} chosen on dev; load {load()}")
        with tempfile.TemporaryDirectory(prefix="bench-split-") as scratch:
            with Clock() as clock:
                engines = load_engines(target, True, "cpu", args.threads, Path(scratch))
            engine = engines["torch"]
            print(f"  export and load: {clock}")
            test = load_split(data_dir(target), "test")
            features = encode(test, engine.tokenizer, engine.max_length).features
            curves = [settings.repeats] if args.curve_repeats is None else args.curve_repeats
            for repeats in curves:
                grid = [(FULL, float("nan"))] + [(args.policy, k) for k in knobs]
                with Clock() as clock:
                    measure(
                        engines, features[: settings.examples], grid, list(settings.batch_sizes),
                        settings.warmup, repeats, options, args.threads,
                    )  # fmt: skip
                print(
                    f"  curve ({settings.examples} examples, batch sizes "
                    f"{list(settings.batch_sizes)}, {repeats} rounds, {len(grid)} "
                    f"settings, 2 engines): {clock}; load {load()}"
                )
            out = test_outputs(target, engine)
            for spec in args.split:
                batch, repeats = (int(v) for v in spec.split("x"))
                with Clock() as clock:
                    table = time_split(
                        engines, features, out, args.policy, knobs[0], options,
                        settings.whole_split.replace(batch_size=batch, repeats=repeats),
                        device_sync(engine), str(run),
                    )  # fmt: skip
                print(f"  whole split ({len(features)} examples) batch {batch} x{repeats}: "
                      f"{clock}; load {load()}")  # fmt: skip
                keyed = table.assign(
                    **key, examples_run=spec, architecture=architecture(engine.model)
                )
                tables.append(keyed)
                for r in table[table.policy != FULL].itertuples():
                    numbers = {
                        k: round(getattr(r, k), 3)
                        for k in ("measured_speedup", "speedup_lo", "speedup_hi",
                                  "layer_speedup", "ratio", "ratio_lo", "ratio_hi")
                    }  # fmt: skip
                    numbers |= {"rounds": r.rounds, "differ": r.differ, "tolerated": r.tolerated}
                    print(f"    {r.engine}: {json.dumps(numbers)}")
    if tables:  # every run's whole-split rows, added to those of earlier calls
        path = args.out / "measured_speedup.tsv"
        frames = [pd.read_csv(path, sep="\t")] if path.is_file() else []
        tables = full_depth_check(tables, settings.full_depth_tolerance)
        write_table(pd.concat([*frames, *tables], ignore_index=True), path)
        print(f"whole-split rows: {path}")


if __name__ == "__main__":
    main()
