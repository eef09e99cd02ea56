"""Spatial-temporal cost: score against parameters (memory) and against FLOPs (time).

COST-EFF's question: for a budget of memory and time, which model and which exit rule?
Every method contributes every point of its sweep under its own criterion (one knob
value each; a single-exit model one point), at its real parameter count (stored by the
predict pass in `exit_logits.npz`, carried into the sweep tables as `num_parameters`)
and its mean FLOPs. The Pareto front (no other point is cheaper and at least as good)
is drawn with and without the slenderized methods, so the figure shows where
slenderization moves it.
"""

from __future__ import annotations

import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from early_exit.analysis.plots import (
    CONTEXT,
    SCORE_SCALE,
    SLIDE_FIGURE_IN,
    method_markers,
    method_palette,
    score_label,
)
from early_exit.analysis.results import select_criteria
from early_exit.support.errors import DataError

COSTS = {"num_parameters": "parameters (M)", "avg_flops": "GFLOPs per example"}
SCALE = {"num_parameters": 1e-6, "avg_flops": 1e-9}


def cost_points(
    sweeps: pd.DataFrame, split: str, criteria: dict[str, str], static: list[str]
) -> pd.DataFrame:
    """One row per (task, method, knob value): score, FLOPs and parameters, seeds averaged.

    Early-exit methods under their own criterion; static and single-exit models as is."""
    if "num_parameters" not in sweeps.columns:
        raise DataError("sweep tables have no num_parameters column: rerun rules train and sweep")
    missing = sorted(sweeps[sweeps.num_parameters.isna()].method.unique())
    if missing:
        raise DataError(
            f"no num_parameters in the sweeps of {missing}: rerun their train (or slenderize) rule"
        )
    data = sweeps[sweeps.split == split]
    keys = ["task", "method", "policy", "metric", "threshold"]
    cols = ["score", "avg_flops", "num_parameters"]
    points = data.groupby(keys, dropna=False)[cols].mean().reset_index()
    dynamic = select_criteria(points[~points.method.isin(static)], criteria, False)
    fixed = points[points.method.isin(static) | (points.policy == "single-exit")]
    return pd.concat([dynamic, fixed]).drop_duplicates().reset_index(drop=True)


def pareto_front(points: pd.DataFrame, cost: str) -> pd.DataFrame:
    """The points no other point beats: lower or equal cost with a higher score."""
    ordered = points.sort_values([cost, "score"], ascending=[True, False])
    best = -np.inf
    keep = []
    for index, row in ordered.iterrows():
        if row.score > best:
            keep.append(index)
            best = row.score
    return ordered.loc[keep]


def spatial_figure(
    points: pd.DataFrame, slenderized: list[str], split: str, info: dict[str, dict] | None = None
) -> matplotlib.figure.Figure:
    """Rows: tasks; columns: score against parameters, score against FLOPs; each method in
    its colour of every figure (`method_palette`, from the config's method `info`)."""
    tasks = sorted(points.task.unique())
    palette = method_palette(points.method.tolist(), info)
    markers = method_markers(points.method.tolist(), info)
    width, height = SLIDE_FIGURE_IN  # the size a slide shows it: tasks side by side
    with sns.plotting_context(CONTEXT), sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(
            1,
            2 * len(tasks),
            figsize=(width, height),
            squeeze=False,
            layout="constrained",
            width_ratios=[1, 2] * len(tasks),  # parameters take few values: the narrower
        )
        for t, task in enumerate(tasks):
            here = points[points.task == task]
            for col, cost in enumerate(COSTS):
                ax = axes[0, 2 * t + col]
                _panel(ax, here, cost, palette, slenderized, markers, info)
                if not col:  # the task over its pair of panels
                    ax.set_title(task, fontsize="small", loc="left")
                ax.set_xlabel(COSTS[cost], fontsize="x-small")
                ax.xaxis.set_major_locator(MaxNLocator(nbins=2 if not col else 3))
                if col:
                    ax.sharey(axes[0, 2 * t])
                    ax.tick_params(labelleft=False)
            metric = ", ".join(sorted(here.metric.unique()))
            if t == 0:
                axes[0, 0].set_ylabel(score_label(metric, split))
        handles = _method_handles(palette, markers, info)
        handles += [
            plt.Line2D([], [], color="black", label="Pareto front"),
            plt.Line2D([], [], color="grey", ls="--", label="without slenderized"),
        ]
        fig.legend(handles=handles, loc="outside right center", frameon=False)
    return fig


def family_member(method: str, info: dict[str, dict] | None) -> tuple[str, int] | None:
    """(family, k) for a method the config expanded from a `layers: [k, ...]` entry (the
    static k-layer models, `static-k`: one colour and marker for the family); else None."""
    spec = (info or {}).get(method, {})
    family, layers = spec.get("family"), spec.get("exit_layers") or []
    if family and family != method and len(layers) == 1:
        return family, int(layers[0])
    return None


def _method_handles(palette: dict, markers: dict, info: dict[str, dict] | None) -> list:
    """A legend entry per method, but one per family of k-layer models ("static-k (k
    labelled)": its points carry k), whose members would repeat one marker and colour."""
    handles, seen = [], set()
    for method, colour in palette.items():
        member = family_member(method, info)
        if member is not None and member[0] in seen:
            continue
        label = method if member is None else f"{member[0]}-k (k labelled)"
        handles.append(plt.Line2D([], [], marker=markers[method], ls="", color=colour,
                                  label=label))  # fmt: skip
        if member is not None:
            seen.add(member[0])
    return handles


def _panel(
    ax,
    points: pd.DataFrame,
    cost: str,
    palette: dict,
    slenderized: list[str],
    markers: dict,
    info: dict[str, dict] | None = None,
) -> None:
    scaled = points.assign(x=points[cost] * SCALE[cost], score=points.score * SCORE_SCALE)
    for method, group in scaled.groupby("method"):
        ax.scatter(
            group.x, group.score, s=30, color=palette[method], marker=markers[method],
            alpha=0.8, zorder=3,
        )  # fmt: skip
        member = family_member(method, info)
        if member is not None:  # the family shares a marker: say which k each point is
            for x, y in zip(group.x, group.score, strict=True):
                ax.annotate(
                    str(member[1]), (x, y), xytext=(-4, 3), textcoords="offset points",
                    ha="right", fontsize="x-small", fontweight="bold", color=palette[method],
                    zorder=5,
                )  # fmt: skip
    front = pareto_front(scaled, "x")
    ax.step(front.x, front.score, where="post", color="black", lw=1.5, zorder=4)
    others = scaled[~scaled.method.isin(slenderized)]
    if len(others) < len(scaled) and not others.empty:
        old = pareto_front(others, "x")
        ax.step(old.x, old.score, where="post", color="grey", ls="--", lw=1.5, zorder=2)
