"""Measured vs. layer speed-up: how much of the layers saved is time saved.

Reads the latency tables the latency stage writes (`inference.latency`). The figure
puts every timed setting at (layer speed-up, measured speed-up), one panel per task
and batch size: the diagonal is the physical limit (time saved in proportion to the
layers skipped), points below it lose time to exit heads, per-layer Python overhead
and batches that shrink; each point's bar spans the measured speed-up's min to max over
the stage's interleaved rounds. The table gives each method's operating point chosen on
dev, with that spread, and names the runs whose full-depth times disagree with another
run of the same architecture (the stage's `full_depth_disagrees` flag). Both engines the
stage times (torch, and the export on ONNX Runtime: the tables' `engine` column) are
shown: a row of panels each, and side by side in the table.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.figure
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from early_exit.analysis.measured import measured_summary, measured_text
from early_exit.analysis.plots import CONTEXT, SLIDE_FIGURE_IN, method_markers
from early_exit.analysis.results import dense_table
from early_exit.support.tables import read_tables

FULL = "full"
COLUMNS = ("task", "method", "seed", "engine", "policy", "knob", "ms_per_example")
COLUMNS += ("measured_speedup", "layer_speedup")  # what the figure and table read


def load_latency(paths: list[str | Path]) -> pd.DataFrame:
    """Concatenate latency tables, naming any missing, empty, cut-short or garbled one."""
    return read_tables(paths, "latency table", "rule latency", columns=COLUMNS)


ENGINE_LABELS = {"torch": "torch", "onnxruntime": "ORT"}  # ORT: the export on ONNX Runtime


def engines(table: pd.DataFrame) -> list[str]:
    """The engines a table times, torch first (the reference of `time_vs_torch`)."""
    return sorted(set(table.engine), key=lambda e: (e != "torch", e))


def speedup_figure(
    table: pd.DataFrame, palette: dict, markers: dict | None = None
) -> matplotlib.figure.Figure:
    """Measured against layer speed-up, one point per task, method, knob and seed, with a
    bar from the lowest to the highest speed-up over rounds; the knob chosen on dev is
    ringed in black; the diagonal is the physical limit. One panel per engine and batch
    size, side by side (the tasks together: the diagonal is what to read), drawn at the
    size a slide shows it with the legend right of the panels. Each method in its colour
    (`palette`) and marker (`markers`, by default `plots.method_markers` of the method
    names) of every figure."""
    timed = table[table.policy != FULL]
    markers = markers or method_markers(list(palette))
    names = engines(timed)
    panels = [(e, b) for e in names for b in sorted(set(timed[timed.engine == e].batch_size))]
    width, height = SLIDE_FIGURE_IN
    with sns.plotting_context(CONTEXT), sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(
            1, len(panels), figsize=(width, height), squeeze=False, layout="constrained"
        )
        for c, (ax, (engine, batch_size)) in enumerate(zip(axes[0], panels, strict=True)):
            part = timed[(timed.batch_size == batch_size) & (timed.engine == engine)]
            _panel(ax, part, palette, markers, legend=c == 0)
            ax.set_title(
                f"{ENGINE_LABELS.get(engine, engine)}, batch {batch_size}", fontsize="small"
            )
            ax.set_xlabel("layer speed-up", fontsize="small")
            ax.set_ylabel("measured speed-up" if c == 0 else "")
        handles, labels = axes[0][0].get_legend_handles_labels()
        if axes[0][0].get_legend() is not None:
            axes[0][0].get_legend().remove()
        fig.legend(handles, labels, loc="outside right center", frameon=False)
    return fig


def _panel(ax, part: pd.DataFrame, palette: dict, markers: dict, legend: bool) -> None:
    top = max(part.layer_speedup.max(), part.speedup_max.max(), 1.0) * 1.05
    ax.plot([1, top], [1, top], ls="--", color="0.5", lw=1, label="physical limit")
    ax.errorbar(
        part.layer_speedup, part.measured_speedup,
        yerr=[part.measured_speedup - part.speedup_min,
              part.speedup_max - part.measured_speedup],
        fmt="none", ecolor="0.6", elinewidth=1, capsize=2, zorder=1,
    )  # fmt: skip
    sns.scatterplot(
        data=part, x="layer_speedup", y="measured_speedup", hue="method", style="method",
        markers={m: markers[m] for m in part.method.unique()},
        palette=palette, ax=ax, s=50, legend=legend, zorder=2,
    )  # fmt: skip
    chosen = part[part.chosen_on_dev]
    ax.scatter(
        chosen.layer_speedup, chosen.measured_speedup, s=140,
        facecolors="none", edgecolors="black", label="chosen on dev",
    )  # fmt: skip
    ax.set(xlim=(0.9, top), ylim=(0, top))


def latency_summary(table: pd.DataFrame) -> pd.DataFrame:
    """The knob chosen on dev, per task, method, engine and batch size: mean over seeds,
    and the speed-up's spread over rounds (the lowest min and highest max of the seeds), as
    a speed-up and as a ratio to the layer speed-up."""
    chosen = table[table.chosen_on_dev]
    cols = ["knob", "ms_per_example", "measured_speedup", "layer_speedup", "ratio",
            "time_vs_torch"]  # fmt: skip
    grouped = chosen.groupby(["task", "method", "policy", "engine", "batch_size"], sort=True)
    summary = grouped[cols].mean()
    summary["speedup_min"] = grouped.speedup_min.min()
    summary["speedup_max"] = grouped.speedup_max.max()
    summary["ratio_min"] = summary.speedup_min / summary.layer_speedup
    summary["ratio_max"] = summary.speedup_max / summary.layer_speedup
    summary["full_depth_disagrees"] = grouped.full_depth_disagrees.any()
    summary["full_ms"] = (
        (
            table[table.policy == FULL]
            .groupby(["task", "method", "engine", "batch_size"])
            .ms_per_example.mean()
        )
        .reindex(summary.index.droplevel("policy"))
        .to_numpy()
    )
    summary["seeds"] = grouped.size()
    return summary.reset_index()


def latency_markdown(table: pd.DataFrame, title: str, whole: pd.DataFrame | None = None) -> str:
    """The chosen operating points' measured speed-ups as markdown slides, one per task:
    a row per method and batch size, each engine's time and speed-up side by side; with
    `whole` (the stage's measured_speedup.tsv), a slide per task of the knob chosen on dev
    over every test example first, the examples of the results tables."""
    summary = latency_summary(table)
    slides = []
    for task, part in summary.groupby("task", sort=True):
        if whole is not None and (whole.task == task).any():
            slides.append(whole_split_slide(whole[whole.task == task], f"{title}: {task}"))
        slides.append(
            f"# {title}: {task}, first {int(table.examples.iloc[0])} test examples\n\n"
            f"{dense_table(_engines_table(part))}\n\n"
            f"{_note(table[table.task == task])}"
        )
    return "\n\n---\n\n".join(slides) + "\n"


def whole_split_slide(whole: pd.DataFrame, title: str) -> str:
    """The knob chosen on dev over every test example: per method, the layer speed-up
    simulated from stored outputs and each engine's measured speed-up [interval over
    rounds] on the same examples, and how many examples the engine answered otherwise."""
    summary = measured_summary(whole, engine=None)
    names = engines(summary)
    first = summary[summary.engine == names[0]].set_index(["method", "policy"])
    rows = pd.DataFrame(
        {
            "Method": first.index.get_level_values("method"),
            "Knob": [
                f"{p} {k:.3g}"
                for p, k in zip(first.index.get_level_values("policy"), first.knob, strict=True)
            ],
            "Layers": [f"{v:.2f}×" for v in first.layer_speedup],
        }
    )  # fmt: skip
    for engine in names:
        part = summary[summary.engine == engine].set_index(["method", "policy"])
        part = part.reindex(first.index)
        label = ENGINE_LABELS.get(engine, engine)
        rows[f"{label} measured"] = [
            measured_text(m, lo, hi)
            for m, lo, hi in zip(
                part.measured_speedup, part.speedup_lo, part.speedup_hi, strict=True
            )
        ]
        rows[f"{label} differ"] = [str(int(d)) for d in part.differ]
    timed = whole[whole.policy != FULL]
    note = (
        f"Every test example ({int(timed.examples.iloc[0])}), at the knob chosen on dev, batch "
        f"size {int(timed.batch_size.iloc[0])}, {int(timed.rounds.iloc[0])} interleaved rounds "
        "of one batch (full depth and the knob on every engine, back to back): measured = "
        "the split's time at full depth / at the knob [95% bootstrap interval over rounds]; "
        "Layers = L / mean exit layer simulated from the stored outputs (the results "
        "tables' Speed-up); differ = examples whose exit or answer differed from the "
        "simulation's (all near the knob: beyond the bound the stage fails)."
        + disagreement_note(whole)
    )
    table = rows.to_markdown(index=False, disable_numparse=True)
    return f"# {title}, every test example\n\n{dense_table(table)}\n\n{note}"


def _engines_table(summary: pd.DataFrame) -> str:
    keys = ["method", "policy", "batch_size"]
    names = engines(summary)
    first = summary[summary.engine == names[0]].set_index(keys)
    rows = pd.DataFrame(
        {
            "Method": first.index.get_level_values("method"),
            "Knob": [f"{p} {k:.3g}" for p, k in zip(first.index.get_level_values("policy"),
                                                    first.knob, strict=True)],
            "Batch": first.index.get_level_values("batch_size"),
            "Layers": [f"{v:.2f}×" for v in first.layer_speedup],
        }
    )  # fmt: skip
    for engine in names:
        part = summary[summary.engine == engine].set_index(keys).reindex(first.index)
        label = ENGINE_LABELS.get(engine, engine)
        rows[f"{label} ms (full)"] = [
            f"{m:.2f} ({f:.2f})" for m, f in zip(part.ms_per_example, part.full_ms, strict=True)
        ]
        rows[f"{label} measured"] = [
            f"{v:.2f}× ({lo:.2f}–{hi:.2f})"
            for v, lo, hi in zip(
                part.measured_speedup, part.speedup_min, part.speedup_max, strict=True
            )
        ]
        rows[f"{label} ratio"] = [f"{v:.2f}" for v in part.ratio]
    return rows.to_markdown(index=False, disable_numparse=True)  # keep "0.90" as written


def _note(table: pd.DataFrame) -> str:
    devices = "; ".join(
        f"{ENGINE_LABELS.get(e, e)} on {d} ({t} threads)"
        for e, d, t in table[["engine", "device", "threads"]].drop_duplicates().to_numpy()
    )
    return (
        f"Real early exiting, {devices} (ORT: the run's ONNX export on ONNX Runtime): "
        f"{int(table.repeats.iloc[0])} interleaved rounds over the first "
        f"{int(table.examples.iloc[0])} test examples, each timing full depth and every knob "
        "once on every engine. ms: per example at the knob chosen on dev (at full depth); "
        "measured = the engine's time at full depth / its time at the knob in the same "
        "round, median (min–max over rounds); Layers = L / mean exit layer; ratio = "
        "measured / Layers (1 = every layer skipped is time saved)." + disagreement_note(table)
    )


def disagreement_note(table: pd.DataFrame) -> str:
    """A sentence naming the runs whose full-depth times disagree with a run of the same
    architecture (empty when none does)."""
    full = table[(table.policy == FULL) & table.full_depth_disagrees]
    if full.empty:
        return ""
    groups = []
    for (task, engine, batch_size), part in full.groupby(
        ["task", "engine", "batch_size"], sort=True
    ):
        runs = ", ".join(sorted(set(part.method)))
        spread = part.full_depth_spread.max()
        on = ENGINE_LABELS.get(engine, engine)
        groups.append(f"{task} on {on} at batch size {batch_size} ({runs}: {spread:.2f}×)")
    return (
        " Full depth disagrees between runs of one architecture (slowest / fastest above "
        f"the stage's tolerance) on {'; '.join(groups)}: the machine's speed changed while "
        "the stage ran, so those runs' times are not comparable with each other (each "
        "speed-up is paired within its rounds)."
    )
