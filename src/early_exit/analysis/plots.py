"""Seaborn figures from sweep tables; notebooks call these and stay thin."""

from __future__ import annotations

import zlib
from pathlib import Path

import matplotlib.colors
import matplotlib.figure
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from early_exit.analysis.results import select_criteria
from early_exit.exits.policies import bound_names
from early_exit.support.atomic import atomic_path

CONTEXT = "talk"  # legible at slide size
X_LABELS = {"speedup": "speed-up (L / avg. exit layer)", "avg_flops": "GFLOPs per example"}
SCORE_SCALE = 100  # scores are drawn x100 in every figure, as the tables show them


# The figure area of a slide (`img.figure` in slides/styles/index.css: at most about
# 870 x 390 px of the 980 px wide page). Figures are drawn at this size in inches so that
# CONTEXT's smallest text (ticks and legends, 16.5 pt) shows at 870 / 12 = 72 px an inch,
# i.e. at 16.5 px, no smaller than the deck's body text (16 px) when projected.
SLIDE_FIGURE_IN = (12.0, 5.4)
LEGEND_IN = 2.6  # the legend column right of the panels (outside the data)
TITLES_IN = 0.9  # a panel's title and its x label


def facet_size(ncols: int, legend: bool = True, rows: int = 1) -> dict:
    """relplot's `height` and `aspect` for `ncols` panels side by side (`rows` of them) that,
    with the legend in a column on the right, fill `SLIDE_FIGURE_IN`."""
    width, height = SLIDE_FIGURE_IN
    panel_h = height / max(rows, 1) - TITLES_IN
    panel_w = (width - (LEGEND_IN if legend else 0.0)) / max(ncols, 1)
    return {"height": panel_h, "aspect": panel_w / panel_h}


def legend_outside(ax, **kwargs) -> None:
    """Move an axes' legend right of the panel, out of the data."""
    if ax.get_legend() is not None:
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, **kwargs)


def legend_with(grid, handles: list, labels: list[str]) -> None:
    """Add `handles` (a reference line, say) to a FacetGrid's legend, which stays in a
    column right of the panels, out of the data."""
    if not handles:
        return
    old = grid.legend
    if old is not None:
        handles = [*old.legend_handles, *handles]
        labels = [*(t.get_text() for t in old.get_texts()), *labels]
        title = old.get_title().get_text()
        old.remove()
    else:
        title = None
    right = max(ax.get_position().x1 for ax in grid.axes.flat) + 0.01  # the panels' edge
    grid._legend = grid.figure.legend(
        handles, labels, title=title, loc="center left", bbox_to_anchor=(right, 0.5), frameon=False
    )


def score_label(metric: str, split: str) -> str:
    """The score axis: `accuracy ×100 (test)`."""
    return f"{metric} ×{SCORE_SCALE} ({split})"


# One colour per method in every figure and every config: fixed per recipe (an index of
# seaborn's colorblind palette), never by which other methods a figure happens to show.
RECIPE_COLOURS = {
    "deebert": 0,
    "pabee": 1,
    "berxit": 2,
    "sledgehammer": 3,
    "elasticbert": 4,
    "costeff": 5,
    "finetune": 7,  # grey: the plain baseline
}
# a second method of one recipe, or a recipe not listed above: the colorblind palette's
# other three, then seaborn's "dark" palette
SPARE_COLOURS = (6, 8, 9)
STATIC_COLOUR = "0.25"  # static k-layer baselines are black in every figure
# ... and one marker per method: stars, crosses and black squares and diamonds mark the
# operating points, the oracle and the static baselines in the trade-off figures
RECIPE_MARKERS = {
    "deebert": "o",
    "pabee": "^",
    "berxit": "v",
    "sledgehammer": "<",
    "elasticbert": ">",
    "costeff": "p",
    "finetune": "D",
}
SPARE_MARKERS = ("h", "8", "H", "d")
STATIC_MARKER = "s"


def _recipe_of(method: str, info: dict[str, dict] | None) -> str | None:
    """The method's recipe: from the config's method info, else its name when that is a
    recipe's (`deebert`) or a static k-layer model's (`static-2`)."""
    if info and method in info and info[method].get("recipe"):
        return info[method]["recipe"]
    if method in RECIPE_COLOURS or method == "static":
        return method
    stem, _, k = method.rpartition("-")
    return "static" if stem == "static" and k.isdigit() else None


def _per_method(methods, info, fixed: dict, static, spares: list) -> dict:
    """Each method's value: its recipe's in `fixed` (`static` for static k-layer models);
    a method without a listed recipe, or a second method of one recipe, a spare by its
    place in the configured method list `info` (else by its name's checksum). Never
    depends on which other methods are asked for."""
    taken: dict[str, str] = {}  # recipe -> the configured method that owns its value
    extras: list[str] = []
    for name in info or {}:
        recipe = _recipe_of(name, info)
        if recipe == "static":
            continue
        if recipe in fixed and recipe not in taken:
            taken[recipe] = name
        else:
            extras.append(name)
    values = {}
    for method in sorted(set(methods)):  # legends list methods in this order
        recipe = _recipe_of(method, info)
        if recipe == "static":
            values[method] = static
        elif recipe in fixed and taken.get(recipe, method) == method:
            values[method] = fixed[recipe]
        else:
            place = extras.index(method) if method in extras else zlib.crc32(method.encode())
            values[method] = spares[place % len(spares)]
    return values


def method_palette(methods: list[str], info: dict[str, dict] | None = None) -> dict[str, tuple]:
    """One fixed colour per method: its recipe's (`RECIPE_COLOURS`; static k-layer models
    black). A method without a listed recipe, or a second method of one recipe, takes a
    spare colour by its place in the configured method list `info` (else by its name's
    checksum), so a method has the same colour in every figure whichever others it shows."""
    colours = sns.color_palette("colorblind", 10)
    fixed = {recipe: colours[i] for recipe, i in RECIPE_COLOURS.items()}
    spares = [colours[i] for i in SPARE_COLOURS] + sns.color_palette("dark", 10)
    return _per_method(methods, info, fixed, matplotlib.colors.to_rgb(STATIC_COLOUR), spares)


def method_markers(methods: list[str], info: dict[str, dict] | None = None) -> dict[str, str]:
    """One fixed marker per method, chosen as its colour is (`RECIPE_MARKERS`)."""
    return _per_method(methods, info, RECIPE_MARKERS, STATIC_MARKER, list(SPARE_MARKERS))


def has_seed_spread(frame: pd.DataFrame) -> bool:
    """Whether some method has more than one seed on some task (else no spread to show)."""
    return bool(frame.groupby(["task", "method"]).seed.nunique().max() > 1)


def exit_lines(data: pd.DataFrame, y: str, palette: dict, **extra):
    """A line per method of `y` against the exit layer, one panel per task (a FacetGrid),
    drawn at the size a slide shows it (`facet_size`), the legend right of the panels.

    Call inside the plotting context; `extra` adds relplot options (style, facet_kws).
    """
    grid = sns.relplot(
        data=data,
        x="exit_layer",
        y=y,
        hue="method",
        hue_order=sorted(data.method.unique()),  # legend order as in every figure
        col="task",
        kind="line",
        marker="o",
        markersize=8,
        palette=palette,
        errorbar="sd" if has_seed_spread(data) else None,  # spread over seeds
        **facet_size(data.task.nunique()),
        **extra,
    )
    for ax in grid.axes.flat:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    grid.set_titles("{col_name}")
    return grid


def curve_points(sweeps: pd.DataFrame, split: str) -> pd.DataFrame:
    """Mean speed-up, FLOPs and score per knob value over seeds, in knob order."""
    data = sweeps[sweeps.split == split]
    keys = ["task", "method", "policy", "metric", "threshold"]
    cols = ["speedup", "avg_flops", "score"]
    return data.groupby(keys, sort=True, dropna=False)[cols].mean().reset_index()


def tradeoff_figure(
    sweeps: pd.DataFrame,
    split: str,
    criteria: dict[str, str],
    static_methods: list[str],
    x: str = "speedup",
    points: pd.DataFrame | None = None,
    curves: dict[str, list[str]] | None = None,
    info: dict[str, dict] | None = None,
) -> matplotlib.figure.Figure:
    """Task metric against speed-up (or FLOPs): one panel per task; each method in its
    colour of every figure (`method_palette`, from the config's method `info`).

    Each early-exit method is drawn under its own criterion; `curves` (backbone ->
    its static k-layer models, see `early_exit.analysis.elue.used_curves`) are the
    black reference curves, one per backbone, never mixing backbones; any other
    single-exit baseline (plain fine-tuning) is a labelled black diamond; the oracle is
    a cross per method. `points` (operating points on test, per run or a summary over
    seeds with intervals) are stars when given, with error bars for intervals.
    """
    curves = curves or {}
    on_curve = {m for methods in curves.values() for m in methods}
    curves_data = curve_points(sweeps, split)
    curves_data["score"] = curves_data.score * SCORE_SCALE
    if x == "avg_flops":
        curves_data["avg_flops"] = curves_data.avg_flops / 1e9
    dynamic = select_criteria(
        curves_data[~curves_data.method.isin(static_methods)], criteria, False
    )
    shown = sweeps.method[~sweeps.method.isin(static_methods)].tolist()
    palette, markers = method_palette(shown, info), method_markers(shown, info)
    with sns.plotting_context(CONTEXT), sns.axes_style("whitegrid"):
        grid = sns.relplot(
            data=dynamic,
            x=x,
            y="score",
            hue="method",
            style="method",  # its marker in every figure
            col="task",
            kind="line",
            sort=False,
            markers={m: markers[m] for m in dynamic.method.unique()},
            dashes=False,
            markersize=6,
            palette=palette,
            facet_kws={"sharey": False, "sharex": False},
            **facet_size(dynamic.task.nunique()),
        )
        references: dict[str, object] = {}
        for task, ax in grid.axes_dict.items():
            here = curves_data[curves_data.task == task]
            references.update(_static_curves(ax, here, curves, x))
            baselines = [m for m in static_methods if m not in on_curve]
            _baseline_marks(ax, here[here.method.isin(baselines)], x)
            _oracle(ax, here[here.policy.isin(bound_names())], x, palette)
        if points is not None:
            _mark_points(grid, select_criteria(points, criteria, False), x, palette)
        legend_with(grid, list(references.values()), list(references))
        if x == "avg_flops":  # few ticks: GFLOPs labels are wide
            for ax in grid.axes.flat:
                ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        metric = ", ".join(sorted(curves_data.metric.unique()))
        grid.set_axis_labels(X_LABELS[x], score_label(metric, split))
        grid.set_titles("{col_name}")
    return grid.figure


CURVE_STYLES = ("k--", "k:", "k-.")


def _static_curves(ax, data: pd.DataFrame, curves: dict[str, list[str]], x: str) -> dict:
    """Draw each backbone's static curve; its legend entries (label -> line) for the
    figure's legend, outside the data."""
    handles = {}
    for i, (backbone, methods) in enumerate(curves.items()):
        style = CURVE_STYLES[i % len(CURVE_STYLES)]
        static = data[data.method.isin(methods)]
        if static.empty:
            continue
        ordered = static.sort_values(x)
        (line,) = ax.plot(ordered[x], ordered.score, style, marker="s", markersize=5)
        handles["static k layers" + (f" ({backbone})" if len(curves) > 1 else "")] = line
    return handles


def _baseline_marks(ax, baselines: pd.DataFrame, x: str) -> None:
    """Single-exit baselines off the reference curve: a black diamond with the name."""
    for row in baselines.itertuples():
        ax.scatter(getattr(row, x), row.score, marker="D", s=50, color="black", zorder=5)
        ax.annotate(
            row.method,
            (getattr(row, x), row.score),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize="xx-small",
        )


def _oracle(ax, oracle: pd.DataFrame, x: str, palette: dict) -> None:
    for row in oracle.itertuples():
        ax.scatter(
            getattr(row, x),
            row.score,
            marker="X",
            s=90,
            color=palette.get(row.method),
            edgecolor="black",
            zorder=5,
        )


def _mark_points(grid, points: pd.DataFrame, x: str, palette: dict) -> None:
    """Stars at the operating points: per-run points (their mean over seeds), or a
    summary over seeds (`results.summary_table`) whose intervals become error bars."""
    points = points[points.test_split == "test"]  # the curves show `test`; MNLI-mm apart
    column = {"speedup": "test_speedup", "avg_flops": "test_flops"}[x]
    scale = 1e-9 if x == "avg_flops" else 1.0
    if "test_score_mean" not in points:
        means = points.groupby(["task", "method"], as_index=False)[[column, "test_score"]].mean()
        points = means.rename(columns={column: f"{column}_mean", "test_score": "test_score_mean"})
    for row in points.to_dict("records"):
        task, method = row["task"], row["method"]
        if task not in grid.axes_dict or method not in palette:
            continue
        ax = grid.axes_dict[task]
        px, py = row[f"{column}_mean"] * scale, row["test_score_mean"] * SCORE_SCALE
        ax.scatter(px, py, marker="*", s=300, color=palette[method], edgecolor="black", zorder=6)
        if not pd.isna(row.get(f"{column}_lo", np.nan)):
            ax.errorbar(
                px,
                py,
                xerr=[[px - row[f"{column}_lo"] * scale], [row[f"{column}_hi"] * scale - px]],
                yerr=[
                    [py - row["test_score_lo"] * SCORE_SCALE],
                    [row["test_score_hi"] * SCORE_SCALE - py],
                ],
                fmt="none",
                ecolor=palette[method],
                elinewidth=1.5,
                capsize=3,
                zorder=5,
            )


def save_figure(fig: matplotlib.figure.Figure, path: str | Path, dpi: int = 150) -> None:
    """Save atomically; the format follows the file extension."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip("."), dpi=dpi, bbox_inches="tight")
