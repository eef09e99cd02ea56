"""Measured vs. layer speed-up: how much of the layers saved is time saved.

Reads the latency tables the latency stage writes (`inference.latency`). The figure
puts every timed setting at (layer speed-up, measured speed-up), one panel per task
and batch size: the diagonal is the physical limit (time saved in proportion to the
layers skipped), points below it lose time to exit heads, per-layer Python overhead
and batches that shrink; each point's bar spans the measured speed-up's min to max over
the stage's interleaved rounds. The table gives each method's operating point chosen on
dev, with that spread, and names the runs whose full-depth times disagree with another
run of the same architecture (the stage's `full_depth_disagrees` flag).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.figure
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from early_exit.analysis.plots import CONTEXT
from early_exit.support.tables import read_tables

FULL = "full"


def load_latency(paths: list[str | Path]) -> pd.DataFrame:
    """Concatenate latency tables, naming any missing or empty one."""
    return read_tables(paths, "latency table", "rule latency")


def speedup_figure(table: pd.DataFrame, palette: dict) -> matplotlib.figure.Figure:
    """Measured against layer speed-up, one point per method, knob and seed, with a bar
    from the lowest to the highest speed-up over rounds; the knob chosen on dev is ringed
    in black; the diagonal is the physical limit."""
    timed = table[table.policy != FULL]
    panels = sorted(timed.groupby(["task", "batch_size"]).groups)
    with sns.plotting_context(CONTEXT), sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(
            1, len(panels), figsize=(4.2 * len(panels), 4), squeeze=False, layout="constrained"
        )
        for ax, (task, batch_size) in zip(axes[0], panels, strict=True):
            part = timed[(timed.task == task) & (timed.batch_size == batch_size)]
            top = max(part.layer_speedup.max(), part.speedup_max.max(), 1.0) * 1.05
            ax.plot([1, top], [1, top], ls="--", color="0.5", lw=1, label="physical limit")
            ax.errorbar(
                part.layer_speedup, part.measured_speedup,
                yerr=[part.measured_speedup - part.speedup_min,
                      part.speedup_max - part.measured_speedup],
                fmt="none", ecolor="0.6", elinewidth=1, capsize=2, zorder=1,
            )  # fmt: skip
            sns.scatterplot(
                data=part, x="layer_speedup", y="measured_speedup", hue="method",
                palette=palette, ax=ax, s=50, legend=ax is axes[0][0], zorder=2,
            )  # fmt: skip
            chosen = part[part.chosen_on_dev]
            ax.scatter(
                chosen.layer_speedup, chosen.measured_speedup, s=140,
                facecolors="none", edgecolors="black", label="chosen on dev",
            )  # fmt: skip
            ax.set(
                title=f"{task}, batch size {batch_size}",
                xlabel="layer speed-up (L / avg exit layer)",
                ylabel="measured speed-up (time, full depth = 1)",
                xlim=(0.9, top),
                ylim=(0, top),
            )
        axes[0][0].legend(fontsize="small", loc="upper left")
    return fig


def latency_summary(table: pd.DataFrame) -> pd.DataFrame:
    """The knob chosen on dev, per task, method and batch size: mean over seeds, and the
    speed-up's spread over rounds (the lowest min and highest max of the seeds), as a
    speed-up and as a ratio to the layer speed-up."""
    chosen = table[table.chosen_on_dev]
    cols = ["knob", "ms_per_example", "measured_speedup", "layer_speedup", "ratio"]
    grouped = chosen.groupby(["task", "method", "policy", "batch_size"], sort=True)
    summary = grouped[cols].mean()
    summary["speedup_min"] = grouped.speedup_min.min()
    summary["speedup_max"] = grouped.speedup_max.max()
    summary["ratio_min"] = summary.speedup_min / summary.layer_speedup
    summary["ratio_max"] = summary.speedup_max / summary.layer_speedup
    summary["full_depth_disagrees"] = grouped.full_depth_disagrees.any()
    summary["full_ms"] = (
        (
            table[table.policy == FULL]
            .groupby(["task", "method", "batch_size"])
            .ms_per_example.mean()
        )
        .reindex(summary.index.droplevel("policy"))
        .to_numpy()
    )
    summary["seeds"] = grouped.size()
    return summary.reset_index()


def latency_markdown(table: pd.DataFrame, title: str) -> str:
    """The chosen operating points' measured speed-ups as a markdown slide."""
    summary = latency_summary(table)
    rows = pd.DataFrame(
        {
            "Task": summary.task,
            "Method": summary.method,
            "Policy": summary.policy,
            "Knob": [f"{k:.3g}" for k in summary.knob],
            "Batch": summary.batch_size,
            "ms/example (full)": [
                f"{m:.2f} ({f:.2f})"
                for m, f in zip(summary.ms_per_example, summary.full_ms, strict=True)
            ],
            "Measured": [
                f"{v:.2f}× ({lo:.2f}–{hi:.2f})"
                for v, lo, hi in zip(
                    summary.measured_speedup, summary.speedup_min, summary.speedup_max,
                    strict=True,
                )
            ],
            "Layers": [f"{v:.2f}×" for v in summary.layer_speedup],
            "Ratio": [
                f"{v:.2f} ({lo:.2f}–{hi:.2f})"
                for v, lo, hi in zip(summary.ratio, summary.ratio_min, summary.ratio_max,
                                     strict=True)
            ],
        }
    )  # fmt: skip
    devices = ", ".join(
        f"{d} ({t} threads)" for d, t in table[["device", "threads"]].drop_duplicates().to_numpy()
    )
    note = (
        f"Real early exiting on {devices}: {int(table.repeats.iloc[0])} interleaved rounds "
        f"over the first {int(table.examples.iloc[0])} test examples, each timing full depth "
        "and every knob once. Measured = time at full depth / time at the knob chosen on dev "
        "in the same round, median (min–max over rounds); Layers = L / mean exit layer; "
        "Ratio = Measured / Layers (1 = every layer skipped is time saved)."
    )
    table_md = rows.to_markdown(index=False, disable_numparse=True)  # keep "0.90" as written
    return f"# {title}\n\n{table_md}\n\n{note}{disagreement_note(table)}\n"


def disagreement_note(table: pd.DataFrame) -> str:
    """A sentence naming the runs whose full-depth times disagree with a run of the same
    architecture (empty when none does)."""
    full = table[(table.policy == FULL) & table.full_depth_disagrees]
    if full.empty:
        return ""
    groups = []
    for (task, batch_size), part in full.groupby(["task", "batch_size"], sort=True):
        runs = ", ".join(sorted(set(part.method)))
        spread = part.full_depth_spread.max()
        groups.append(f"{task} at batch size {batch_size} ({runs}: {spread:.2f}×)")
    return (
        " Full depth disagrees between runs of one architecture (slowest / fastest above "
        f"the stage's tolerance) on {'; '.join(groups)}: the machine's speed changed while "
        "the stage ran, so those runs' times are not comparable with each other (each "
        "speed-up is paired within its rounds)."
    )
