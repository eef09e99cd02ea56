"""Seaborn figures from sweep tables; notebooks call these and stay thin."""

from __future__ import annotations

from pathlib import Path

import matplotlib.figure
import pandas as pd
import seaborn as sns

from early_exit.atomic import atomic_path

CONTEXT = "talk"  # legible at slide size


def method_palette(methods: list[str]) -> dict[str, tuple]:
    """One fixed colour per method, in sorted order, so every figure agrees."""
    names = sorted(set(methods))
    return dict(zip(names, sns.color_palette("colorblind", len(names)), strict=True))


def curve_points(sweeps: pd.DataFrame, split: str) -> pd.DataFrame:
    """Mean speed-up and score per threshold over seeds, in threshold order."""
    data = sweeps[sweeps.split == split]
    keys = ["task", "method", "policy", "metric", "threshold"]
    return data.groupby(keys, sort=True)[["speedup", "score"]].mean().reset_index()


def tradeoff_figure(
    sweeps: pd.DataFrame, split: str, points: pd.DataFrame | None = None
) -> matplotlib.figure.Figure:
    """Task metric against speed-up, one panel per task, one line per method.

    `points` (operating points) are marked with a star when given.
    """
    curves = curve_points(sweeps, split)
    palette = method_palette(curves.method.tolist())
    with sns.plotting_context(CONTEXT), sns.axes_style("whitegrid"):
        grid = sns.relplot(
            data=curves,
            x="speedup",
            y="score",
            hue="method",
            style="policy",
            col="task",
            kind="line",
            sort=False,
            marker="o",
            markersize=5,
            palette=palette,
            height=4.5,
            aspect=1.2,
            facet_kws={"sharey": False},
        )
        if points is not None:
            _mark_points(grid, points, palette)
        metric = ", ".join(sorted(curves.metric.unique()))
        grid.set_axis_labels("speed-up (L / avg. exit layer)", f"{metric} ({split})")
        grid.set_titles("{col_name}")
    return grid.figure


def _mark_points(grid, points: pd.DataFrame, palette: dict) -> None:
    mean = points.groupby(["task", "method"])[["test_speedup", "test_score"]].mean()
    for (task, method), row in mean.iterrows():
        if task in grid.axes_dict:
            grid.axes_dict[task].scatter(
                row.test_speedup,
                row.test_score,
                marker="*",
                s=300,
                color=palette[method],
                edgecolor="black",
                zorder=5,
            )


def save_figure(fig: matplotlib.figure.Figure, path: str | Path, dpi: int = 150) -> None:
    """Save atomically; the format follows the file extension."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip("."), dpi=dpi, bbox_inches="tight")
