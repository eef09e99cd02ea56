"""The serving notebook's figure and table: per method and serving mode (full depth,
shrinking batch, refilling scheduler), the capacity under the latency objective and the
latency at an equal offered load.

The stage's points are short (docs/serving.md): the capacity here is the highest offered
rate whose p90 (failures counted as infinite latency) stays within the SLO among the
rates tried, and the equal load is the highest rate at which full depth still meets it;
`scripts/bench_serving.py` measures the p99 capacity with repeats.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from early_exit.analysis.plots import CONTEXT, LEGEND_IN, SLIDE_FIGURE_IN
from early_exit.analysis.results import dense_table
from early_exit.support.tables import read_tables

MODES = {
    "full": "full depth, dynamic batching",
    "shrink": "shrinking batch",
    "refill": "refilling scheduler",
}


def load_serving(paths: list[str | Path]) -> pd.DataFrame:
    """Concatenate serving tables, naming any missing or empty one."""
    return read_tables(paths, "serving table", "rule serving")


def capacities(table: pd.DataFrame) -> pd.DataFrame:
    """Per method and mode: the highest offered rate whose p90 is within the SLO (0 if
    none of the rates tried), with the SLO."""
    rows = []
    for (method, mode), group in table.groupby(["method", "mode"], sort=True):
        ok = group[group.p90_ms <= group.slo_ms]
        rows.append(
            {
                "method": method,
                "mode": mode,
                "capacity": float(ok.offered_rate.max()) if not ok.empty else 0.0,
                "slo_ms": float(group.slo_ms.iloc[0]),
            }
        )
    return pd.DataFrame(rows)


def equal_load(table: pd.DataFrame) -> pd.DataFrame:
    """Per method: every mode's row at one offered rate, the highest at which full depth
    meets the SLO (the lowest rate tried if it never does)."""
    out = []
    for _, group in table.groupby("method", sort=True):
        full = group[group["mode"] == "full"]
        ok = full[full.p90_ms <= full.slo_ms]
        multiple = (ok if not ok.empty else full).rate_multiple
        multiple = multiple.max() if not ok.empty else multiple.min()
        out.append(group[group.rate_multiple == multiple])
    return pd.concat(out, ignore_index=True)


def serving_figure(table: pd.DataFrame) -> matplotlib.figure.Figure:
    """One figure at the size a slide shows it. Left: capacity under the SLO per method, one
    bar per mode. Right: p50 latency at an equal offered load (the rate under each method's
    name; 95% order-statistic interval) with p90 as a tick. The modes' legend is right of
    the panels, out of the data."""
    caps = capacities(table)
    equal = equal_load(table)
    methods = sorted(table.method.unique())
    modes = [m for m in MODES if m in set(table["mode"])]
    palette = dict(zip(MODES, sns.color_palette("colorblind", len(MODES)), strict=True))
    width = 0.8 / len(modes)
    x = np.arange(len(methods))
    fig_w, fig_h = SLIDE_FIGURE_IN
    with sns.plotting_context(CONTEXT), sns.axes_style("whitegrid"):
        fig, (left, right) = plt.subplots(1, 2, figsize=(fig_w, fig_h))
        for k, mode in enumerate(modes):
            offset = (k - (len(modes) - 1) / 2) * width
            c = caps[caps["mode"] == mode].set_index("method").reindex(methods)
            left.bar(x + offset, c.capacity, width, color=palette[mode], label=MODES[mode])
            e = equal[equal["mode"] == mode].set_index("method").reindex(methods)
            err = np.vstack([e.p50_ms - e.p50_low_ms, e.p50_high_ms - e.p50_ms])
            err = np.where(np.isfinite(err), err, 0)
            right.bar(x + offset, e.p50_ms, width, color=palette[mode], yerr=err, capsize=2)
            right.plot(x + offset, e.p90_ms, "_", color="black", markersize=12, mew=2)
        slo = table.groupby("method").slo_ms.first().reindex(methods)
        left.set_title(f"p90 within the SLO ({slo.median():.0f} ms)", fontsize="medium")
        left.set_ylabel("capacity (requests/s)")
        right.set_title("at equal load (req/s): p50, – p90", fontsize="medium")
        right.set_ylabel("latency (ms)")
        rates = equal.groupby("method").offered_rate.first().reindex(methods)
        top = np.nanmax(np.where(np.isfinite(equal.p90_ms), equal.p90_ms, np.nan))
        for xi, rate in zip(x, rates, strict=True):  # the equal load over each method
            right.text(xi, top * 1.04, f"{rate:.0f}", ha="center", va="bottom", fontsize="small")
        right.set_ylim(0, top * 1.18)
        for ax in (left, right):
            ax.set_xticks(x, methods, rotation=30, ha="right")
        handles, labels = left.get_legend_handles_labels()
        right_edge = 1 - LEGEND_IN / fig_w
        fig.tight_layout(rect=(0, 0, right_edge, 1))
        fig.legend(
            handles,
            [label.replace(", ", ",\n") for label in labels],
            loc="center left",
            bbox_to_anchor=(right_edge, 0.5),
            frameon=False,
        )
    return fig


def serving_markdown(table: pd.DataFrame, title: str = "Serving under load") -> str:
    """Per method and mode: the capacity under the SLO among the rates tried, and at the
    equal offered load: p50 and p90 with their 95% intervals, the requests behind them,
    and the mean rows per layer call (or batch)."""
    caps = capacities(table).set_index(["method", "mode"])
    equal = equal_load(table)
    lines = [
        f"# {title}",
        "",
        "Capacity: the highest offered rate with p90 (failures as infinite) within the SLO. "
        "Latency at the equal offered load (ms, 95% interval), over n requests.",
        "",
    ]
    table = [
        "| method | mode | capacity (req/s) | load (req/s) | p50 (ms) | p90 (ms) | n | rows/call |",
        "|---|---|---:|---:|---|---|---:|---:|",
    ]

    def num(v):
        return f"{v:.1f}" if np.isfinite(v) else "∞"

    def ms(v, lo, hi):
        return f"{num(v)} [{num(lo)}, {num(hi)}]" if np.isfinite(v) else "∞"

    for row in equal.sort_values(["method", "mode"]).itertuples():
        cap = caps.loc[(row.method, row.mode), "capacity"]
        table.append(
            f"| {row.method} | {MODES.get(row.mode, row.mode)} | {cap:.1f} | "
            f"{row.offered_rate:.1f} | {ms(row.p50_ms, row.p50_low_ms, row.p50_high_ms)} | "
            f"{ms(row.p90_ms, row.p90_low_ms, row.p90_high_ms)} | {row.sent} | "
            f"{row.rows_per_call:.1f} |"
        )
    return "\n".join([*lines, dense_table("\n".join(table))]) + "\n"
