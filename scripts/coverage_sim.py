"""Coverage of the operating points' 95% intervals, simulated over dev/test splits drawn
from a run's stored outputs (early_exit.analysis.coverage; docs/statistics.md).

For every early-exit run of a results directory (each method under its own criterion,
the config's policies and max_drop), the pool is the run's dev and test examples
together; each simulated split draws dev and test samples of the real sizes from it,
chooses the knob on dev and builds the fixed-knob and re-selected bootstrap intervals.
Prints the coverage of score, drop and speed-up per interval kind and truth (the value at
the chosen knob, and the protocol's mean over dev splits), pooled over runs, then per
run, and writes every simulated split to --out. The protocol's truth is per run, so the
pooled table averages per-run coverages weighted by their splits.

    PYTHONPATH=src .venv/bin/python scripts/coverage_sim.py --results results \\
        --config config/config.yaml --draws 200 --resamples 400 --out coverage.tsv
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from early_exit.analysis.coverage import Pool, coverage, simulate
from early_exit.analysis.roles import finetune_of, method_info
from early_exit.config.check import task_policies
from early_exit.exits.calibration import calibrate
from early_exit.exits.operating_points import Guarantee
from early_exit.exits.stored import load_exit_logits
from early_exit.exits.sweep import decide, decisions, load_temperatures, split_outputs
from early_exit.support.tables import write_table


def last_exit_answers(out) -> np.ndarray:
    """Every example's answer at the last exit (the run's full model)."""
    return decide(out, np.full((1, len(out.labels)), out.n_exits - 1))[0]


def last_exit_correct(run_dir: Path, labels: dict[str, np.ndarray]) -> np.ndarray:
    """Plain fine-tuning's answers (its last exit) on dev then test, checked to be the
    same examples as the pool's (the same labels in the same order)."""
    stored = load_exit_logits(run_dir / "exit_logits.npz")
    parts = []
    for split in ("dev", "test"):
        out = split_outputs(stored, split, None)
        if not np.array_equal(out.labels, labels[split]):
            raise SystemExit(f"error: {run_dir}: {split} examples differ from the pool's")
        parts.append(last_exit_answers(out) == out.labels)
    return np.concatenate(parts)


def run_pool(
    run_dir: Path, policies: dict, policy: str, finetune_dir: Path | None = None
) -> tuple[Pool, dict] | None:
    """The run's dev and test examples under `policy`, as one pool, and the split sizes;
    with `finetune_dir`, plain fine-tuning's answers on the same examples."""
    stored = load_exit_logits(run_dir / "exit_logits.npz")
    if str(stored["metric"]) != "accuracy":
        return None
    calibration = run_dir / "calibration.json"
    temps = (  # the sweep rule's temperatures, fitted the same way when not there yet
        load_temperatures(calibration)
        if calibration.exists()
        else np.asarray(calibrate(stored)["temperatures"])
    )
    parts, sizes, labels = [], {}, {}
    for split in ("dev", "test"):
        out = split_outputs(stored, split, temps)
        found = [
            (g, e) for name, g, e in decisions(stored, policies, split, temps) if name == policy
        ]
        if not found:
            return None
        _, exit_idx = found[0]
        n = len(out.labels)
        preds, full = decide(out, exit_idx), last_exit_answers(out)
        parts.append(
            (
                preds == out.labels[None, :],
                stored["exit_layers"][exit_idx],
                full == out.labels,
                preds != full[None, :],
            )
        )
        sizes[split], labels[split] = n, out.labels
    correct, layer, full, differ = (np.concatenate(p, axis=-1) for p in zip(*parts, strict=True))
    tuned = last_exit_correct(finetune_dir, labels) if finetune_dir is not None else None
    return Pool(correct, layer, full, int(stored["num_layers"]), differ, tuned), sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    parser.add_argument("--seed", type=int, default=13, help="the training seed's runs")
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--resamples", type=int, default=400)
    parser.add_argument("--out", type=Path, default=Path("coverage.tsv"))
    args = parser.parse_args()
    config = yaml.safe_load(args.config.read_text())
    max_drop = config["analysis"]["max_drop"]
    info = method_info(config)
    guarantee = Guarantee.from_config(config["analysis"].get("guarantee"))
    frames, start = [], time.time()
    for task in config["tasks"]:
        policies = task_policies(config, task)
        for method, i in sorted(info.items()):
            run_dir = args.results / task / method / f"seed{args.seed}"
            if i["static"] or not (run_dir / "exit_logits.npz").exists():
                continue
            name = finetune_of(info, method)
            tuned = args.results / task / name / f"seed{args.seed}" if name else None
            if tuned is not None and not (tuned / "exit_logits.npz").exists():
                tuned = None
            found = run_pool(run_dir, policies, i["criterion"], tuned)
            if found is None:
                continue
            pool, sizes = found
            draws = simulate(
                pool,
                sizes["dev"],
                sizes["test"],
                max_drop,
                args.draws,
                args.resamples,
                guarantee=guarantee,
            )
            frames.append(draws.assign(task=task, method=method, policy=i["criterion"]))
            print(f"{task} {method}: {len(draws)} splits ({time.time() - start:.0f} s)")
    draws = pd.concat(frames, ignore_index=True)
    write_table(draws, args.out)
    print("\npooled over runs:")
    pooled = pd.concat([coverage(g) for _, g in draws.groupby(["task", "method"])])
    pooled = pooled.groupby(["statistic", "interval", "truth"], sort=False).mean().reset_index()
    print(pooled.to_string(index=False, float_format="%.3f"))
    g = guarantee
    print(
        f"\nknob with a guarantee (disagreement <= {g.delta:g} with probability >= "
        f"{1 - g.epsilon:g}): realised violation rate per run, against the point rule's"
    )
    for (task, method), group in draws.groupby(["task", "method"]):
        ltt = (group.ltt_risk_truth > g.delta).mean()
        point = (group.point_risk_truth > g.delta).mean()
        certified = (group.ltt_knob >= 0).mean()
        print(
            f"{task} {method}: LTT {ltt:.3f} (a knob certified in {certified:.2f} of splits, "
            f"speed-up {group.ltt_speedup_truth.mean():.2f}x), point rule {point:.3f} "
            f"(speed-up {group.speedup_truth.mean():.2f}x)"
        )
    print("\nper run:")
    for (task, method), group in draws.groupby(["task", "method"]):
        table = coverage(group).pivot(
            index="statistic", columns=["interval", "truth"], values="coverage"
        )
        agreement = group.knob_agreement.mean()
        print(f"{task} {method} (dev knob agreement {agreement:.2f}):")
        print(table.to_string(float_format="%.3f"))


if __name__ == "__main__":
    main()
