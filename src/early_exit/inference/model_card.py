"""The model card of an export (its README.md): what the model is, the task, the knobs
chosen on dev per policy with their scores, and the measured speed-ups with the machine
they were timed on. Written by `early-exit export` (`inference.onnx_export`) from the
export's manifest and the run's facts (`inference.run_facts`); read back by
`OrtEngine.card`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from early_exit.exits.policies import get_policy


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _num(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


LATENCY_COLUMNS = (  # shown when the table has them (newer tables carry more)
    "engine", "policy", "knob", "batch_size", "ms_per_example", "measured_speedup",
    "speedup_min", "speedup_max", "layer_speedup", "ratio", "time_vs_torch",
)  # fmt: skip
MACHINE_COLUMNS = ("machine", "cpu", "device", "threads")


def speed_section(latency: pd.DataFrame | None) -> str:
    if latency is None:
        return (
            "Not measured: the run has no latency table (`latency.tsv`, written by the "
            "workflow's latency stage for early-exit methods only), so no speed-up was timed "
            "for this model. The layer speed-ups above are derived from the stored exit outputs."
        )
    chosen = latency
    if "chosen_on_dev" in latency:
        chosen = latency[latency.chosen_on_dev.astype(str).str.lower() == "true"]
    shown = [c for c in LATENCY_COLUMNS if c in chosen]
    rows = [[_num(r[c]) for c in shown] for r in chosen.to_dict("records")]
    machine = [c for c in MACHINE_COLUMNS if c in latency]
    seen = latency[machine].drop_duplicates().to_dict("records") if machine else []
    where = "; ".join(", ".join(f"{c} {r[c]}" for c in machine) for r in seen) or "not recorded"
    note = (
        ""
        if "machine" in latency or "cpu" in latency
        else " (the table records the device and thread count, not the processor)"
    )
    return (
        "Timed by the workflow's latency stage at the knob chosen on dev, on the torch engine "
        "unless an engine column says otherwise (measured speed-up: time at full depth / time "
        "at the knob, same batch size; layer speed-up: the layers saved). Measured on: "
        f"{where}{note}.\n\n" + _table(shown, rows)
    )


def model_card(manifest: dict, points: dict, latency: pd.DataFrame | None, temps) -> str:
    meta, model = manifest["model"], manifest
    task_type = meta.get("task_type", "classification")
    labels = ", ".join(map(str, meta.get("label_names", []))) or "-"
    backbone = meta.get("backbone", {}).get("name", "?")
    method = (meta.get("method") or {}).get("recipe") or meta["exit"]["extra"].get("recipe", "?")
    seed = meta.get("seed", "?")
    shapes = manifest.get("pruned_shapes")
    pruned = (
        f"pruned (COST-EFF widths: heads {shapes['heads']}, FFN {shapes['intermediate']}, "
        f"embedding rank {shapes['embedding_rank']})"
        if shapes
        else "full width"
    )
    if temps is None:
        temperatures = "none (the run has no calibration.json): the confidence policy uses T = 1"
    else:
        temperatures = ", ".join(f"{t:.3f}" for t in temps) + " (per exit, fitted on dev)"
    point_rows = [
        [
            name,
            get_policy(name).format_knob(p["knob"]) if name in points else "-",
            p.get("metric", "-"),
            _num(p.get("dev_score")),
            _num(p.get("test_score_full")),
            _num(p.get("test_score")),
            _num(p.get("test_speedup"), 2),
            p.get("chosen_from", "-"),
        ]
        for name, p in points.items()
    ]
    operating = (
        _table(
            [
                "policy",
                "knob",
                "metric",
                "dev score",
                "test score, full depth",
                "test score at knob",
                "test layer speed-up",
                "chosen from",
            ],
            point_rows,
        )  # fmt: skip
        if points
        else "None: the run has no sweep table and is not in the workflow's operating points, "
        "so `--threshold auto` is refused; give a number."
    )
    gate = "a learned exit gate (BERxiT)" if model["gate"] else "no exit gate"
    params = model["num_parameters"]
    return f"""# {meta.get("task", "?")} / {method} / seed {seed}: an early-exit model in ONNX

Exported by `early-exit export` from `{manifest["source"]}`. Run it with
`early-exit predict <this directory> --policy <policy> --threshold auto < texts.txt`, or from
Python with `early_exit.inference.ort_engine.OrtEngine.from_dir`; the graphs, one per piece,
are listed in `export.json`.

## Task

- task: `{meta.get("task", "?")}` ({task_type}), text fields: {", ".join(manifest["fields"])}
- labels: {labels}
- inputs truncated to {meta.get("max_length")} tokens

## Model

- backbone: `{backbone}`, {model["num_layers"]} layers, {pruned}, {params:,} parameters
- exits after layers {", ".join(map(str, model["exit_layers"]))}; head `{model["head"]}`, {gate}
- temperatures: {temperatures}

## Policies and the knobs chosen on dev

The knob `--threshold auto` takes, per policy: the fastest on dev within the allowed drop of
the full model's dev score, measured on test.

{operating}

## Measured speed-ups

{speed_section(latency)}
"""
