"""How much the chosen operating points move between training seeds.

Each method is taken under its own criterion at the knob chosen on dev for each
seed (`early_exit.exits.operating_points.operating_points`), and its test score and speed-up are
shown seed by seed. With a single seed there is no spread to show: the figure and
the table say so instead of drawing an empty interval.
"""

from __future__ import annotations

import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from early_exit.analysis.plots import CONTEXT, SLIDE_FIGURE_IN, STATIC_COLOUR, has_seed_spread
from early_exit.analysis.results import select_criteria

PANELS = {"score": "test_score", "speed-up": "test_speedup"}


def seed_points(points: pd.DataFrame, criteria: dict[str, str]) -> pd.DataFrame:
    """Operating points of every method under its own criterion, one row per seed.

    A task with several test splits (MNLI matched and mismatched) becomes one "task"
    per split, named `task · split`, so the splits are never averaged together.
    """
    chosen = select_criteria(points, criteria, include_oracle=False)
    chosen = chosen.assign(test_score=chosen.test_score * 100).reset_index(drop=True)
    several = chosen.groupby("task").test_split.transform("nunique") > 1
    chosen.loc[several, "task"] = chosen.task + " · " + chosen.test_split
    return chosen


def method_order(methods: list[str], static_methods: list[str]) -> list[str]:
    """Early-exit methods first, then the baselines, each alphabetically."""
    names = sorted(set(methods))
    return [m for m in names if m not in static_methods] + [m for m in names if m in static_methods]


def single_seed_note(points: pd.DataFrame) -> str | None:
    """A sentence for figure and table when no method has more than one seed."""
    if has_seed_spread(points):
        return None
    return "one seed per method: no spread to show (list more under `seeds:` in the config)"


def seeds_figure(
    points: pd.DataFrame, palette: dict, static_methods: list[str]
) -> matplotlib.figure.Figure:
    """Test score and speed-up per seed (dots) with mean ± std over seeds (black bars, drawn
    only when there are several seeds).

    Methods down the side, one row of panels: score (x100) and speed-up for each task.
    Early-exit methods in their colours, static baselines in black.
    """
    order = method_order(points.method.tolist(), static_methods)
    colours = {m: palette.get(m, STATIC_COLOUR) for m in order}
    panels = [(task, name) for task in sorted(points.task.unique()) for name in PANELS]
    note = single_seed_note(points)
    many_seeds = note is None
    metric = ", ".join(sorted(points.metric.unique()))
    with sns.plotting_context(CONTEXT), sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(
            1,
            len(panels),
            figsize=SLIDE_FIGURE_IN,  # the size a slide shows it: its fonts as drawn
            squeeze=False,
            sharey=True,
        )
        for ax, (task, name) in zip(axes.flat, panels, strict=True):
            data = points[points.task == task]
            column = PANELS[name]
            jitter_state = np.random.get_state()  # seaborn jitters with numpy's global RNG:
            np.random.seed(0)  # seeded here, the same figure on every run
            sns.stripplot(
                data=data,
                x=column,
                y="method",
                hue="method",
                order=order,
                hue_order=order,
                palette=colours,
                size=9,
                jitter=0.15,
                legend=False,
                zorder=3,
                ax=ax,
            )
            np.random.set_state(jitter_state)
            if many_seeds:
                sns.pointplot(
                    data=data,
                    x=column,
                    y="method",
                    order=order,
                    errorbar="sd",
                    color="black",
                    markers="|",
                    markersize=16,
                    linestyle="none",
                    capsize=0.25,
                    ax=ax,
                )
            ax.set_ylabel("")
            label = f"{metric} ×100" if name == "score" else "speed-up"
            ax.set_xlabel(f"{label} (test)", fontsize="small")
            ax.set_title(task, fontsize="small")
            ax.xaxis.set_major_locator(MaxNLocator(nbins=3))  # four panels side by side
            ax.tick_params(axis="x", labelsize="small")
        if note:
            fig.suptitle(note, fontsize="small", color="0.3")
        fig.tight_layout()
    return fig


def seeds_markdown(points: pd.DataFrame, title: str) -> str:
    """Per task and method: every seed's test score and speed-up, and their mean ± std."""
    rows = []
    for (task, method), run in points.groupby(["task", "method"], sort=True):
        run = run.sort_values("seed")
        scores, speedups = run.test_score, run.test_speedup
        spread = f"{scores.mean():.1f}" + (f" ± {scores.std():.1f}" if len(run) > 1 else "")
        rows.append(
            {
                "Task": task,
                "Method": method,
                "Policy": run.policy.iloc[0],
                "Seeds": ", ".join(str(s) for s in run.seed),
                "Score per seed": ", ".join(f"{s:.1f}" for s in scores),
                "Score mean ± std": spread,
                "Speed-up per seed": ", ".join(f"{s:.2f}×" for s in speedups),
            }
        )
    table = pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)
    note = "Test split, knob chosen on dev per seed; scores ×100."
    if single := single_seed_note(points):
        note += f" {single[0].upper()}{single[1:]}."
    return f"# {title}\n\n{table}\n\n{note}\n"
