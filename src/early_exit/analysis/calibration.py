"""Calibration of each exit before and after temperature scaling (Sledgehammer's step).

Reliability diagrams bin test examples by confidence (max softmax) with the same 15
equal-width bins as `early_exit.exits.calibration.ece`, so the ECE in a panel title is the
count-weighted gap between its two curves and the diagonal. ECE per exit comes from
the calibration reports the workflow wrote (`calibration.json`).
"""

from __future__ import annotations

import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from early_exit.analysis.plots import CONTEXT, SCORE_SCALE, SLIDE_FIGURE_IN, exit_lines
from early_exit.analysis.runs import Run
from early_exit.exits.calibration import N_BINS, confidence_bins
from early_exit.exits.policies import get_policy

BEFORE_COLOUR = "0.55"  # grey: the raw softmax
SCALINGS = ("before", "after")


def calibrated_methods(info: dict[str, dict]) -> list[str]:
    """Methods whose exit criterion uses the fitted temperatures (`Policy.calibrated`:
    Sledgehammer's calibrated confidence); every multi-exit method when none does."""
    dynamic = [m for m, i in info.items() if not i["static"]]
    return [m for m in dynamic if get_policy(info[m]["criterion"]).calibrated] or dynamic


def reliability_bins(
    logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0, n_bins: int = N_BINS
) -> pd.DataFrame:
    """Per non-empty confidence bin: mean confidence, accuracy and example count."""
    bins, conf, correct = confidence_bins(logits, labels, temperature, n_bins)
    frame = pd.DataFrame({"bin": bins, "confidence": conf, "correct": correct})
    table = frame.groupby("bin").agg(
        confidence=("confidence", "mean"), accuracy=("correct", "mean"), count=("bin", "size")
    )
    return table.reset_index()


def ece_from_bins(bins: pd.DataFrame) -> float:
    """Expected calibration error of (pooled) reliability bins."""
    weights = bins["count"] / bins["count"].sum()
    return float((weights * (bins.accuracy - bins.confidence).abs()).sum())


def reliability_frame(runs: list[Run], split: str) -> pd.DataFrame:
    """Reliability bins of every exit of every classification run, before and after scaling."""
    frames = []
    for run in runs:
        temps = run.temperatures
        if run.task_type != "classification" or temps is None:
            continue
        logits, labels = run.stored[f"{split}_logits"], run.stored[f"{split}_labels"]
        for e, layer in enumerate(run.exit_layers):
            for scaling, temp in zip(SCALINGS, (1.0, temps[e]), strict=True):
                bins = reliability_bins(logits[:, e], labels, temp)
                frames.append(
                    bins.assign(
                        task=run.task,
                        method=run.method,
                        seed=run.seed,
                        exit_layer=int(layer),
                        scaling=scaling,
                        temperature=temp,
                    )
                )
    return pd.concat(frames, ignore_index=True)


def pool_seeds(bins: pd.DataFrame) -> pd.DataFrame:
    """Reliability bins pooled over seeds: count-weighted means per bin."""
    keys = ["task", "method", "exit_layer", "scaling", "bin"]
    weighted = bins.assign(
        conf_sum=bins.confidence * bins["count"], acc_sum=bins.accuracy * bins["count"]
    )
    pooled = weighted.groupby(keys)[["conf_sum", "acc_sum", "count"]].sum()
    pooled["confidence"] = pooled.conf_sum / pooled["count"]
    pooled["accuracy"] = pooled.acc_sum / pooled["count"]
    return pooled.drop(columns=["conf_sum", "acc_sum"]).reset_index()


def confidence_gaps(bins: pd.DataFrame) -> pd.DataFrame:
    """Per task, method, exit and scaling (pooled over bins and seeds): the mean confidence,
    the accuracy and their gap (confidence - accuracy: below 0 the exit is under-confident,
    above 0 over-confident), with the example count (`reliability.tsv`)."""
    keys = ["task", "method", "exit_layer", "scaling"]
    weighted = bins.assign(
        conf_sum=bins.confidence * bins["count"], acc_sum=bins.accuracy * bins["count"]
    )
    out = weighted.groupby(keys)[["conf_sum", "acc_sum", "count"]].sum()
    out["confidence"] = out.conf_sum / out["count"]
    out["accuracy"] = out.acc_sum / out["count"]
    out["gap"] = out.confidence - out.accuracy
    return out.drop(columns=["conf_sum", "acc_sum"]).reset_index()


SCALING_TITLES = {"before": "raw softmax", "after": "temperature-scaled"}


def reliability_figure(bins: pd.DataFrame, palette: dict, split: str) -> matplotlib.figure.Figure:
    """Reliability diagrams, x100: one row per method, one panel per task and scaling (the
    raw softmax, then after dividing the logits by each exit's temperature fitted on dev),
    side by side; one line per exit, shallow to deep from light to dark. Marker area grows
    with the bin's example count; the dotted diagonal is perfect calibration (ECE per exit:
    the ECE figure). Bins are pooled over seeds. Drawn at the size a slide shows it, the
    legend right of the panels. `palette` (the methods' colours) is the ECE figure's; here
    colour tells the exits apart."""
    pooled = pool_seeds(bins)
    pooled = pooled.assign(
        confidence=pooled.confidence * SCORE_SCALE, accuracy=pooled.accuracy * SCORE_SCALE
    )
    methods = sorted(pooled.method.unique())
    tasks = sorted(pooled.task.unique())
    layers = sorted(pooled.exit_layer.unique())
    shades = dict(zip(layers, sns.color_palette("viridis_r", len(layers)), strict=True))
    width, height = SLIDE_FIGURE_IN  # the size a slide shows it; taller with many methods
    with sns.plotting_context(CONTEXT), sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(
            len(methods),
            len(tasks) * len(SCALINGS),
            figsize=(width, max(height, 3.6 * len(methods))),
            squeeze=False,
            sharex=True,
            sharey=True,
            layout="constrained",
        )
        for r, method in enumerate(methods):
            for t, task in enumerate(tasks):
                for k, scaling in enumerate(SCALINGS):
                    ax = axes[r, t * len(SCALINGS) + k]
                    cell = pooled[
                        (pooled.method == method)
                        & (pooled.task == task)
                        & (pooled.scaling == scaling)
                    ]
                    _reliability_panel(ax, cell, shades)
                    ax.set_title(f"{task}\n{SCALING_TITLES[scaling]}", fontsize="small")
            if len(methods) > 1:
                axes[r, 0].set_ylabel(method, fontsize="small")
        fig.supxlabel(f"confidence ×{SCORE_SCALE}", fontsize="medium")
        fig.supylabel(f"accuracy ×{SCORE_SCALE} ({split})", fontsize="medium")
        handles = [
            Line2D([], [], color=shades[layer], marker="o", label=f"exit {layer}")
            for layer in layers
        ]
        handles.append(Line2D([], [], color="black", linestyle=":", label="calibrated"))
        fig.legend(handles=handles, loc="outside right center", frameon=False)
    return fig


def _reliability_panel(ax, cell: pd.DataFrame, shades: dict) -> None:
    ax.plot([0, SCORE_SCALE], [0, SCORE_SCALE], color="black", linewidth=1, linestyle=":")
    top = cell["count"].max() if len(cell) else 1
    for layer, part in cell.groupby("exit_layer", sort=True):
        part = part.sort_values("bin")
        colour = shades[layer]
        ax.plot(part.confidence, part.accuracy, color=colour, linewidth=2)
        sizes = 15 + 150 * part["count"] / top
        ax.scatter(part.confidence, part.accuracy, s=sizes, color=colour, zorder=3)
    ax.set_xticks([0, SCORE_SCALE / 2, SCORE_SCALE])
    ax.set_xlim(0, 1.02 * SCORE_SCALE)
    ax.set_ylim(0, 1.02 * SCORE_SCALE)


# --------------------------------------------------------------------------- ECE per exit


def ece_frame(runs: list[Run], split: str) -> pd.DataFrame:
    """ECE per exit before and after temperature scaling, from the calibration reports."""
    rows = []
    for run in runs:
        report = run.calibration or {}
        if not report.get("temperatures"):
            continue  # regression: not calibrated
        for e, layer in enumerate(run.exit_layers):
            for scaling in SCALINGS:
                rows.append(
                    {
                        "task": run.task,
                        "method": run.method,
                        "seed": run.seed,
                        "exit_layer": int(layer),
                        "temperature": report["temperatures"][e],
                        "scaling": scaling,
                        "ece": report[f"{split}_ece_{scaling}"][e],
                    }
                )
    return pd.DataFrame(rows)


def ece_figure(ece: pd.DataFrame, palette: dict, split: str) -> matplotlib.figure.Figure:
    """ECE of each exit: dashed before, solid after temperature scaling; one panel per task."""
    ece = ece.assign(ece=ece.ece * SCORE_SCALE)  # x100, as every score shown
    with sns.plotting_context(CONTEXT), sns.axes_style("whitegrid"):
        grid = exit_lines(
            ece,
            "ece",
            palette,
            style="scaling",
            style_order=list(SCALINGS),
            dashes={"before": (4, 2), "after": ""},
        )
        for ax in grid.axes.flat:
            ax.set_ylim(bottom=0)
        grid.set_axis_labels("exit layer", f"ECE ×{SCORE_SCALE} ({split})")
    return grid.figure


def ece_markdown(ece: pd.DataFrame, title: str, split: str) -> str:
    """ECE before → after scaling, methods as rows and exit layers as columns (means over seeds)."""
    mean = ece.groupby(["task", "method", "exit_layer", "scaling"]).ece.mean().unstack("scaling")
    cells = mean.apply(lambda r: f"{r['before']:.3f} → {r['after']:.3f}", axis=1)
    wide = cells.unstack("exit_layer").fillna("–")
    wide.columns = [f"layer {c}" for c in wide.columns]
    text = wide.reset_index().rename(columns=str.capitalize).to_markdown(index=False)
    seeds = ece.seed.nunique()
    note = (
        f"Expected calibration error (15 confidence bins) on {split}, before → after dividing "
        f"each exit's logits by its temperature fitted on dev; "
        f"mean over {seeds} seed{'s' if seeds > 1 else ''}; – = no exit at that layer."
    )
    return f"# {title}\n\n{text}\n\n{note}\n"
