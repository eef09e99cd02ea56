"""The serving notebook's figure and table: latency against throughput under load, one
curve per serving mode (full depth, shrinking batch, refilling scheduler), per method."""

from __future__ import annotations

from pathlib import Path

import matplotlib.figure
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from early_exit.analysis.plots import CONTEXT
from early_exit.support.tables import read_tables

MODES = {
    "full": "full depth, dynamic batching",
    "shrink": "shrinking batch",
    "refill": "refilling scheduler",
}


def load_serving(paths: list[str | Path]) -> pd.DataFrame:
    """Concatenate serving tables, naming any missing or empty one."""
    return read_tables(paths, "serving table", "rule serving")


def serving_figure(table: pd.DataFrame) -> matplotlib.figure.Figure:
    """p99 latency against sustained throughput, one panel per method, one curve per mode
    (the points are the offered arrival rates, in order)."""
    methods = sorted(table.method.unique())
    palette = dict(zip(MODES, sns.color_palette("colorblind", len(MODES)), strict=True))
    with sns.plotting_context(CONTEXT), sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(
            1, len(methods), figsize=(3.6 * len(methods), 3.4), squeeze=False, sharey=True
        )
        for ax, method in zip(axes[0], methods, strict=True):
            rows = table[table.method == method]
            for mode, label in MODES.items():
                curve = rows[rows["mode"] == mode].sort_values("offered_rate")
                ax.plot(curve.throughput, curve.p99_ms, "o-", color=palette[mode], label=label)
            ax.set_title(method)
            ax.set_xlabel("throughput (requests/s)")
            ax.set_yscale("log")
        axes[0][0].set_ylabel("p99 latency (ms)")
        axes[0][-1].legend(fontsize="small")
        fig.tight_layout()
    return fig


def serving_markdown(table: pd.DataFrame, title: str = "Serving under load") -> str:
    """Per method and mode: the highest throughput sustained (every request answered) and
    its p50/p99, and the unloaded full-depth latency."""
    lines = [
        f"# {title}",
        "",
        "| method | mode | throughput (req/s) | p50 (ms) | p99 (ms) |",
        "|---|---|---:|---:|---:|",
    ]
    for (method, mode), rows in table.groupby(["method", "mode"], sort=True):
        ok = rows[rows.rejected == 0]
        best = (ok if not ok.empty else rows).sort_values("throughput").iloc[-1]
        lines.append(
            f"| {method} | {MODES.get(mode, mode)} | {best.throughput:.1f} | "
            f"{best.p50_ms:.1f} | {best.p99_ms:.1f} |"
        )
    return "\n".join(lines) + "\n"
