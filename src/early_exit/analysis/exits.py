"""Where examples leave the network: per-exit scores and exit-layer distributions.

From stored logits alone: the score of every exit on its own, and, for a method
under its own exit criterion, the share of examples that leave at each layer for a
few knob values, split into correct and incorrect answers (the per-task figures of
the original talk, made from this workflow's runs).
"""

from __future__ import annotations

import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.patches import Patch

from early_exit.analysis.plots import CONTEXT, SCORE_SCALE, exit_lines, legend_with, score_label
from early_exit.analysis.runs import Run
from early_exit.exits.policies import get_policy
from early_exit.exits.sweep import decide
from early_exit.support.errors import DataError

OUTCOMES = ("correct", "incorrect")
INCORRECT_ALPHA = 0.35


# --------------------------------------------------------------------------- per-exit scores


def exit_scores(runs: list[Run], split: str) -> pd.DataFrame:
    """The task metric of every exit of every run, each exit answering alone."""
    from early_exit.exits.metrics import score_rows

    rows = []
    for run in runs:
        out = run.outputs(split)
        every_exit = np.repeat(np.arange(out.n_exits)[:, None], len(out.labels), axis=1)
        scores = score_rows(run.metric, out.labels, decide(out, every_exit))
        for layer, score in zip(run.exit_layers, scores, strict=True):
            rows.append(
                {
                    "task": run.task,
                    "method": run.method,
                    "seed": run.seed,
                    "exit_layer": int(layer),
                    "metric": run.metric,
                    "score": float(score),
                }
            )
    return pd.DataFrame(rows)


def exit_scores_figure(
    scores: pd.DataFrame,
    static_methods: list[str],
    palette: dict,
    split: str,
    curves: dict[str, list[str]] | None = None,
) -> matplotlib.figure.Figure:
    """Score of each exit against its layer: a line per multi-exit method, one panel per task.

    `curves` (backbone -> its static k-layer models) are the black dashed references,
    one per backbone as in the trade-off figures (other single-exit baselines are not
    drawn: they are not one backbone's truncations); error bars are the standard
    deviation over seeds.
    """
    scores = scores.assign(score=scores.score * SCORE_SCALE)  # x100, as every score shown
    dynamic = scores[~scores.method.isin(static_methods)]
    curves = curves or {}
    with sns.plotting_context(CONTEXT), sns.axes_style("whitegrid"):
        grid = exit_lines(dynamic, "score", palette, facet_kws={"sharey": False})
        references = {}
        for task, ax in grid.axes_dict.items():
            for backbone, methods in curves.items():
                static = scores[(scores.task == task) & scores.method.isin(methods)]
                if static.empty:
                    continue
                mean = static.groupby("exit_layer").score.mean()
                (line,) = ax.plot(mean.index, mean.values, "k--", marker="s", markersize=6)
                label = "static k layers" + (f" ({backbone})" if len(curves) > 1 else "")
                references[label] = line
        legend_with(grid, list(references.values()), list(references))
        metric = ", ".join(sorted(scores.metric.unique()))
        grid.set_axis_labels("exit layer", score_label(metric, split))
    return grid.figure


# --------------------------------------------------------------------------- exit distributions


def exit_distribution(run: Run, policy: str, cfg: dict, split: str, chosen: float) -> pd.DataFrame:
    """Share of examples leaving at each exit for every knob value of `policy`.

    One row per (knob value, exit, outcome); `chosen` is the knob value picked on dev
    for this run (see `early_exit.exits.operating_points`). Regression tasks
    have no correct/incorrect split: their outcome is "all".
    """
    out = run.outputs(split)
    grid, idx = get_policy(policy).decide(out, cfg)  # [K], [K, N]
    hits = np.flatnonzero(np.isclose(grid, chosen, rtol=1e-9, atol=1e-12))
    if not len(hits):
        raise DataError(
            f"{run.task}/{run.method}/seed{run.seed}: chosen {policy} knob {chosen} "
            f"is not on the knob grid (was the sweep run with another config?)"
        )
    at_exit = idx[..., None] == np.arange(out.n_exits)  # [K, N, E]
    if run.task_type == "regression":
        shares = {"all": at_exit.mean(1)}
    else:
        correct = (decide(out, idx) == out.labels[None, :])[..., None]
        shares = {"correct": (at_exit & correct).mean(1), "incorrect": (at_exit & ~correct).mean(1)}
    rows = []
    for outcome, share in shares.items():  # share [K, E]
        for k, threshold in enumerate(grid):
            for e, layer in enumerate(run.exit_layers):
                rows.append(
                    {
                        "task": run.task,
                        "method": run.method,
                        "seed": run.seed,
                        "policy": policy,
                        "knob": k,
                        "threshold": float(threshold),
                        "chosen": k == hits[0],
                        "exit_layer": int(layer),
                        "num_layers": run.num_layers,
                        "outcome": outcome,
                        "share": float(share[k, e]),
                    }
                )
    return pd.DataFrame(rows)


def exit_distributions(
    runs: list[Run],
    criteria: dict[str, str],
    policies: dict[str, dict],
    points: pd.DataFrame,
    split: str,
) -> pd.DataFrame:
    """`exit_distribution` of every multi-exit run under its method's own criterion.

    `points` are the operating points (one row per task, method, seed and policy) whose
    `threshold` is the knob chosen on dev.
    """
    frames = []
    for run in runs:
        policy = criteria.get(run.method)
        if run.exit_layers.size < 2 or policy not in policies:
            continue
        row = points[
            (points.task == run.task)
            & (points.method == run.method)
            & (points.seed == run.seed)
            & (points.policy == policy)
        ]
        if row.empty:
            continue  # the task does not sweep this policy
        frames.append(
            exit_distribution(run, policy, policies[policy], split, row.threshold.iloc[0])
        )
    columns = ["task", "method", "seed", "policy", "knob", "threshold", "chosen", "exit_layer"]
    columns += ["num_layers", "outcome", "share"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def knobs_to_show(n_grid: int, chosen: list[int], n: int = 3) -> list[int]:
    """Grid positions for the figure: `n` evenly spaced ones (both ends included) and
    every position chosen on dev."""
    spread = np.linspace(0, n_grid - 1, min(n, n_grid)).round().astype(int)
    return sorted({int(k) for k in spread} | {int(k) for k in chosen})


def knob_summary(dist: pd.DataFrame) -> pd.DataFrame:
    """Per (task, method, knob): accuracy (share correct), speed-up and how many seeds
    chose the knob on dev, averaged over seeds."""
    keys = ["task", "method", "policy", "knob", "threshold"]
    per_seed = dist.assign(
        layers=dist.share * dist.exit_layer, right=dist.share.where(dist.outcome == "correct", 0.0)
    )
    per_seed = per_seed.groupby([*keys, "seed"]).agg(
        avg_exit_layer=("layers", "sum"),
        accuracy=("right", "sum"),
        num_layers=("num_layers", "first"),
        chosen=("chosen", "any"),
    )
    per_seed["speedup"] = per_seed.num_layers / per_seed.avg_exit_layer
    summary = per_seed.groupby(keys).agg(
        accuracy=("accuracy", "mean"),
        speedup=("speedup", "mean"),
        chosen_by=("chosen", "sum"),
        seeds=("chosen", "size"),
    )
    if (dist.outcome == "all").any():
        summary["accuracy"] = np.nan
    return summary.reset_index()


def _knob_label(policy: str, threshold: float) -> str:
    """`$\\tau$ = 0.500`: the symbol as matplotlib mathtext, so a panel shows τ, not `\\tau`."""
    pol = get_policy(policy)
    return f"${pol.symbol}$ = {pol.format_knob(threshold)}"


def exit_distribution_figure(
    dist: pd.DataFrame, colour, split: str, n_knobs: int = 3
) -> matplotlib.figure.Figure:
    """Stacked bars of the share of examples leaving at each exit, correct and incorrect.

    One row per task, one panel per knob value (`n_knobs` spread over the grid plus the
    value most seeds chose on dev; ★ marks chosen values, with the number of seeds that
    chose each when there are several). The panel title gives the resulting accuracy and
    speed-up. Shares are means over seeds.
    """
    summary = knob_summary(dist)
    tasks = sorted(dist.task.unique())
    shown = {}
    for task in tasks:
        rows = summary[summary.task == task]
        # the knob most seeds chose on dev (seeds may disagree; one panel keeps it legible)
        chosen = int(rows.knob[rows.chosen_by.idxmax()])
        shown[task] = knobs_to_show(len(rows), [chosen], n_knobs)
    ncols = max(len(k) for k in shown.values())
    with sns.plotting_context(CONTEXT), sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(
            len(tasks),
            ncols,
            figsize=(2.5 * ncols + 0.4, 2.4 * len(tasks) + 0.8),
            sharey=True,
            squeeze=False,
        )
        for r, task in enumerate(tasks):
            for c in range(ncols):
                ax = axes[r, c]
                if c >= len(shown[task]):
                    ax.set_visible(False)
                    continue
                knob = shown[task][c]
                _exit_bars(ax, dist[(dist.task == task) & (dist.knob == knob)], colour)
                info = summary[(summary.task == task) & (summary.knob == knob)].iloc[0]
                ax.set_title(_panel_title(info), fontsize="small")
                ax.set_xlabel("exit layer" if r == len(tasks) - 1 else "")
            axes[r, 0].set_ylabel(task, fontsize="small")
        handles = [Patch(color=colour, label="correct")]
        if (dist.outcome == "incorrect").any():
            handles.append(Patch(color=colour, alpha=INCORRECT_ALPHA, label="incorrect"))
        fig.legend(handles=handles, loc="upper center", ncol=2, frameon=False, fontsize="small")
        fig.supylabel(f"% of {split} examples", fontsize="small")
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig.get_figheight()))  # room for the legend
    return fig


def exit_distribution_figures(
    dist: pd.DataFrame, methods: list[str], palette: dict, split: str
) -> dict[str, matplotlib.figure.Figure]:
    """`exit_distribution_figure` of each of `methods`; a method without runs under its own
    criterion (a single exit, or a criterion the sweep left out) gets a figure saying so,
    so that every method has its figure (the deck shows one per method)."""
    figures = {}
    for method in methods:
        part = dist[dist.method == method]
        if part.empty:
            fig, ax = plt.subplots(figsize=(8, 2))
            ax.axis("off")
            ax.text(
                0.5,
                0.5,
                f"{method}: no multi-exit run under its own criterion",
                ha="center",
                va="center",
                fontsize=14,
            )
            figures[method] = fig
        else:
            figures[method] = exit_distribution_figure(part, palette[method], split)
    return figures


def _exit_bars(ax, cell: pd.DataFrame, colour) -> None:
    shares = cell.groupby(["exit_layer", "outcome"]).share.mean().unstack("outcome") * 100
    layers = shares.index.to_numpy()
    bottom = np.zeros(len(layers))
    for outcome in [o for o in (*OUTCOMES, "all") if o in shares]:
        alpha = INCORRECT_ALPHA if outcome == "incorrect" else 1.0
        values = shares[outcome].to_numpy()
        ax.bar(layers, values, bottom=bottom, color=colour, alpha=alpha, width=0.8)
        bottom += values
    ax.set_xticks(layers)
    ax.grid(axis="x", visible=False)  # no grid lines through the translucent bars
    ax.set_ylim(0, 100)


def _panel_title(info) -> str:
    label = _knob_label(info.policy, info.threshold)
    if info.chosen_by:
        label += " ★" if info.seeds == 1 else f" ★{info.chosen_by}/{info.seeds}"
    result = f"{info.speedup:.2f}×"
    if not np.isnan(info.accuracy):
        result = f"{100 * info.accuracy:.1f}% · {result}"
    return f"{label}\n{result}"
