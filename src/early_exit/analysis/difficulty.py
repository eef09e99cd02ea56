"""Instance difficulty (Sledgehammer, Schwartz et al. 2020, section 5): is an example the
first exit is sure about also an easy one?

Two proxies of difficulty per test example: its length (unpadded tokens) and the
agreement across exits (the fraction of the earlier exits whose prediction equals
the final exit's). Each is compared with the first exit's calibrated confidence,
max softmax(z_1 / T_1), by a Spearman rank correlation.
"""

from __future__ import annotations

import warnings

import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from early_exit.analysis.plots import CONTEXT, SCORE_SCALE, SLIDE_FIGURE_IN
from early_exit.analysis.runs import Run
from early_exit.exits.policies.confidence import confidence

# short: four panels side by side on a slide
MEASURES = {"length": "input length (tokens)", "agreement": "share agreeing"}
MAX_LENGTH_POINTS = 12  # more distinct lengths are drawn in quantile bins


def difficulty_frame(runs: list[Run], split: str) -> pd.DataFrame:
    """One row per example of every multi-exit classification run."""
    frames = []
    for run in runs:
        if run.task_type != "classification" or run.exit_layers.size < 2:
            continue
        out = run.outputs(split)
        preds = out.logits.argmax(-1)  # [N, E]
        frames.append(
            pd.DataFrame(
                {
                    "task": run.task,
                    "method": run.method,
                    "seed": run.seed,
                    "length": run.stored[f"{split}_lengths"].astype(int),
                    "agreement": (preds[:, :-1] == preds[:, -1:]).mean(1),
                    "confidence": confidence(out)[:, 0],
                    "first_correct": preds[:, 0] == out.labels,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman's rho and its p-value; NaN when either side is constant."""
    from scipy.stats import spearmanr

    if np.unique(x).size < 2 or np.unique(y).size < 2:
        return float("nan"), float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = spearmanr(x, y)
    return float(result.statistic), float(result.pvalue)


def spearman_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (task, method, seed): rho and p of first-exit confidence against each measure."""
    rows = []
    for (task, method, seed), run in frame.groupby(["task", "method", "seed"], sort=True):
        row = {"task": task, "method": method, "seed": seed, "examples": len(run)}
        for measure in MEASURES:
            rho, p = spearman(run[measure].to_numpy(), run.confidence.to_numpy())
            row |= {f"rho_{measure}": rho, f"p_{measure}": p}
        rows.append(row)
    return pd.DataFrame(rows)


def _rho(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "–"
    text = f"{values.mean():+.2f}"
    return text if len(values) < 2 else f"{text} ± {values.std():.2f}"


def spearman_markdown(table: pd.DataFrame, title: str, split: str) -> str:
    """Spearman's rho per task and method, mean ± std over seeds."""
    grouped = table.groupby(["task", "method"], sort=True)
    wide = pd.DataFrame(
        {
            "ρ with length": grouped.rho_length.apply(_rho),
            "ρ with agreement": grouped.rho_agreement.apply(_rho),
            "Examples per seed": grouped.examples.first(),
            "Seeds": grouped.size(),
        }
    ).reset_index()
    wide.columns = ["Task", "Method", *wide.columns[2:]]
    note = (
        f"Spearman's ρ between the first exit's calibrated confidence and each difficulty "
        f"proxy, {split} split; – = the proxy is constant (e.g. every input truncated to "
        f"the same length)."
    )
    text = wide.to_markdown(index=False, disable_numparse=True)
    return f"# {title}\n\n{text}\n\n{note}\n"


def binned_lengths(frame: pd.DataFrame, bins: int = 8) -> pd.DataFrame:
    """For drawing only: many distinct lengths become the mean length of their quantile bin."""
    if frame.length.nunique() <= MAX_LENGTH_POINTS:
        return frame
    groups = pd.qcut(frame.length, bins, duplicates="drop")
    return frame.assign(length=frame.length.groupby(groups, observed=True).transform("mean"))


def difficulty_figure(
    frame: pd.DataFrame, palette: dict, split: str, wrap: int = 4
) -> matplotlib.figure.Figure:
    """First-exit confidence against length and against agreement, side by side per task
    (a row of panels, wrapped after `wrap`, so it fits a 16:9 slide).

    Lines are means per value with 95% bootstrap intervals (seaborn's default), one per
    method, pooled over seeds; lengths are binned when there are many distinct ones. A
    proxy with a single value on a task (every input truncated to the same length) has
    nothing to plot: its panel says so instead of drawing a degenerate axis.
    """
    panels = [(task, m) for task in sorted(frame.task.unique()) for m in MEASURES]
    ncols = min(wrap, len(panels))
    nrows = -(-len(panels) // ncols)
    with sns.plotting_context(CONTEXT), sns.axes_style("whitegrid"):
        width, height = SLIDE_FIGURE_IN  # the size a slide shows it, the legend right of it
        fig, axes = plt.subplots(
            nrows,
            ncols,
            figsize=(width, max(height, 3.2 * nrows)),
            squeeze=False,
            sharey=True,
            layout="constrained",
        )
        for ax in axes.flat[len(panels) :]:
            ax.set_visible(False)
        legend_ax = None
        for i, ((task, measure), ax) in enumerate(zip(panels, axes.flat, strict=False)):
            data = frame[frame.task == task]
            data = data.assign(confidence=data.confidence * SCORE_SCALE)  # x100, as scores
            if data[measure].nunique() < 2:
                _constant_panel(ax, measure, data[measure].iloc[0])
            else:
                sns.lineplot(
                    data=binned_lengths(data),
                    x=measure,
                    y="confidence",
                    hue="method",
                    hue_order=sorted(frame.method.unique()),  # as in every figure
                    palette=palette,
                    marker="o",
                    ax=ax,
                    legend=legend_ax is None,
                    seed=0,
                )
                legend_ax = legend_ax or ax
                ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
            ax.set_title(task, fontsize="small")
            ax.set_xlabel(MEASURES[measure], fontsize="small")
            label = f"first-exit confidence ×{SCORE_SCALE} ({split})"
            ax.set_ylabel(label if i % ncols == 0 else "")
        if legend_ax is not None:
            handles, labels = legend_ax.get_legend_handles_labels()
            legend_ax.get_legend().remove()
            fig.legend(handles, labels, loc="outside right center", frameon=False)
    return fig


def _constant_panel(ax, measure: str, value) -> None:
    """A panel whose proxy has one value: say so, with no axis to read."""
    if measure == "length":
        text = f"every input is {int(value)} tokens\n(truncated):\nno spread\nto plot"
    else:
        text = f"agreement is\n{value:.2f} for\nevery input:\nno spread\nto plot"
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize="x-small")
    ax.set_xticks([])
    ax.tick_params(axis="y", length=0)
    ax.grid(False)
