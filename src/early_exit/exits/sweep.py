"""Threshold sweeps from stored logits into a tidy table (the workflow's sweep stage).

For every configured policy and every knob value: the task metric and the cost,
from the stored logits alone (no model, no re-inference). Cost is reported with
unambiguous names:
  avg_exit_layer      mean layer number at which examples exit (1..L)
  layer_fraction_used avg_exit_layer / L
  speedup             L / avg_exit_layer   (a ratio, not a saving)
  avg_flops           mean FLOPs per example at its real length, exit heads included
  full_score          the score when every example leaves at the last exit (the full
                      model), the same on every row of a split: the reference of the
                      dev-to-test protocol, whatever the policy's grid holds
  full_flops          mean FLOPs per example of the full model
  num_parameters      the model's parameter count (stored by predict; NaN if not stored)
A model with a single exit (plain fine-tuning, static truncation) has no knob: it
gets one row per split with policy "single-exit".
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from early_exit.exits.metrics import score_rows
from early_exit.exits.policies import Outputs, check_policy, get_policy
from early_exit.exits.stored import load_exit_logits, stored_scores
from early_exit.support.errors import DataError
from early_exit.support.tables import write_table

SINGLE_EXIT = "single-exit"
log = logging.getLogger(__name__)


def decide(out: Outputs, exit_idx: np.ndarray) -> np.ndarray:
    """Predictions [K, N] given the exit each example takes under each knob value."""
    n = np.arange(out.logits.shape[0])
    chosen = out.logits[n[None, :], exit_idx]  # [K, N, C]
    return chosen[..., 0] if out.task_type == "regression" else chosen.argmax(-1)


def rows(
    stored: dict, split: str, out: Outputs, policy: str, grid: np.ndarray, exit_idx: np.ndarray
) -> pd.DataFrame:
    """One row per knob value: task metric, accuracy and cost."""
    layers = stored["exit_layers"]
    num_layers = int(stored["num_layers"])
    metric = str(stored["metric"])
    preds = decide(out, exit_idx)
    avg_layer = layers[exit_idx].mean(1)
    flops = stored[f"{split}_flops"]
    n = np.arange(len(out.labels))
    last = np.full((1, len(n)), out.n_exits - 1)
    full_score = score_rows(metric, out.labels, decide(out, last))[0]
    accuracy = (
        (preds == out.labels[None, :]).mean(1)
        if out.task_type == "classification"
        else np.full(len(grid), np.nan)
    )
    return pd.DataFrame(
        {
            "split": split,
            "policy": policy,
            "threshold": grid,
            "metric": metric,
            "score": score_rows(metric, out.labels, preds),
            "accuracy": accuracy,
            "avg_exit_layer": avg_layer,
            "layer_fraction_used": avg_layer / num_layers,
            "speedup": num_layers / avg_layer,
            "avg_flops": flops[n[None, :], exit_idx].mean(1),
            "full_score": full_score,
            "full_flops": flops[:, -1].mean(),
            "num_parameters": float(stored.get("num_parameters", np.nan)),
        }
    )


CALIBRATION_REWRITE = "rerun rule sweep to write it again"


def read_calibration(path: Path) -> dict:
    """A run's calibration report (`calibration.json`, written by rule sweep), checked:
    JSON, an object whose `temperatures` is null (regression) or one positive number per
    exit. A small file rewritten in seconds, so no checksum: its structure is checked."""
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise DataError(
            f"{path}: cannot read temperatures ({err}); {CALIBRATION_REWRITE}"
        ) from None
    temps = report.get("temperatures", ()) if isinstance(report, dict) else ()
    exits = report.get("exit_layers") if isinstance(report, dict) else None
    ok = temps is None or (
        isinstance(temps, list)
        and all(isinstance(t, int | float) and t > 0 for t in temps)
        and (exits is None or len(exits) == len(temps))
    )
    if not ok:
        raise DataError(
            f"{path}: cannot read temperatures (not null or one positive number per exit); "
            f"{CALIBRATION_REWRITE}"
        )
    return report


def load_temperatures(path: Path | None) -> np.ndarray | None:
    if path is None:
        return None
    temps = read_calibration(path)["temperatures"]
    return None if temps is None else np.asarray(temps)


def split_outputs(stored: dict, split: str, temperatures: np.ndarray | None) -> Outputs:
    """What the policies see of one stored split."""
    return Outputs(
        stored[f"{split}_logits"],
        stored[f"{split}_labels"],
        str(stored["task_type"]),
        temperatures,
        stored_scores(stored, split),
    )


def decisions(stored: dict, policies: dict, split: str, temperatures: np.ndarray | None = None):
    """Yield (policy, grid [K], exit index [K, N]) for every policy that applies to one
    split: the sweep's rows and the bootstrap's resamples both start from these."""
    out = split_outputs(stored, split, temperatures)
    if out.n_exits == 1:
        yield SINGLE_EXIT, np.array([np.nan]), np.zeros((1, len(out.labels)), dtype=np.int64)
        return
    for name, cfg in policies.items():
        check_policy(name, out.task_type, out.n_exits, cfg)
        policy = get_policy(name)
        if not policy.applies(out):
            log.info("policy %s not applicable to %s: the run stores no gate outputs", name, split)
            continue
        yield (name, *policy.decide(out, cfg))


def sweep_stored(
    stored: dict, policies: dict, splits: list[str], temperatures: np.ndarray | None = None
) -> pd.DataFrame:
    """Every policy over its grid on every split, as one table."""
    frames = []
    for split in splits:
        out = split_outputs(stored, split, temperatures)
        for name, grid, exit_idx in decisions(stored, policies, split, temperatures):
            frames.append(rows(stored, split, out, name, grid, exit_idx))
    return pd.concat(frames, ignore_index=True)


def sweep_file(
    logits_path: Path,
    out_path: Path,
    policies: dict,
    splits: list[str] | None,
    run_key: dict[str, str | int],
    calibration_path: Path | None = None,
) -> pd.DataFrame:
    """Sweep and write the table; `run_key` (task, method, seed) become its first columns.

    `splits` defaults to every split stored (dev and each test split)."""
    stored = load_exit_logits(logits_path)
    splits = splits or [str(s) for s in stored.get("splits", ["dev", "test"])]
    table = sweep_stored(stored, policies, splits, load_temperatures(calibration_path))
    write_table(table, out_path, run_key)
    return table
