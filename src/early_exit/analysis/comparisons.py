"""The significance figure and the differences table (from `significance.tsv` and
`intervals.tsv`, written by the `operating_points` rule); notebooks call these."""

from __future__ import annotations

import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from early_exit.analysis.plots import CONTEXT
from early_exit.analysis.results import interval_text, select_criteria


def panels(significance: pd.DataFrame) -> list[tuple[str, str]]:
    """(task, test split) of each matrix, in order."""
    keys = significance[["task", "test_split"]].drop_duplicates()
    return sorted(map(tuple, keys.to_numpy()))


def difference_matrix(significance: pd.DataFrame, task: str, split: str):
    """Row minus column score difference (x100) and significance, both [M, M]."""
    pairs = significance[(significance.task == task) & (significance.test_split == split)]
    names = sorted(set(pairs.method_a) | set(pairs.method_b))
    diff = pd.DataFrame(np.nan, index=names, columns=names)
    marked = pd.DataFrame(False, index=names, columns=names)
    for row in pairs.itertuples():
        diff.loc[row.method_a, row.method_b] = 100 * row.difference
        diff.loc[row.method_b, row.method_a] = -100 * row.difference
        marked.loc[row.method_a, row.method_b] = marked.loc[row.method_b, row.method_a] = bool(
            row.significant
        )
    return diff, marked


def significance_figure(significance: pd.DataFrame, level: float) -> matplotlib.figure.Figure:
    """One matrix per task: score difference row - column at the operating points
    (points x100), significant differences (Holm-adjusted, at `level`) in bold with a star."""
    keys = panels(significance)
    with sns.plotting_context(CONTEXT), sns.axes_style("white"):
        size = max(len(difference_matrix(significance, *k)[0]) for k in keys) if keys else 1
        fig, axes = plt.subplots(
            1,
            max(len(keys), 1),
            figsize=(0.75 * size * max(len(keys), 1) + 3, 0.6 * size + 2.5),
            squeeze=False,
        )
        for ax, (task, split) in zip(axes.flat, keys, strict=False):
            diff, marked = difference_matrix(significance, task, split)
            labels = diff.map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
            labels = labels.where(~marked, labels + "*")
            bound = float(np.nanmax(np.abs(diff.to_numpy()))) if diff.notna().any().any() else 1
            sns.heatmap(
                diff,
                annot=labels,
                fmt="",
                cmap="vlag",
                center=0,
                vmin=-bound,
                vmax=bound,
                cbar=False,
                square=True,
                linewidths=0.5,
                annot_kws={"fontsize": 9},
                ax=ax,
            )
            for text in ax.texts:
                if text.get_text().endswith("*"):
                    text.set_fontweight("bold")
            title = task if split == "test" else f"{task} · {split}"
            ax.set_title(title, fontsize="small")
            ax.tick_params(labelsize="x-small")
        fig.suptitle(
            f"score difference row − column (points ×100); * significant at {level:g} after Holm",
            fontsize="small",
        )
        fig.tight_layout()
    return fig


def differences_markdown(
    summary: pd.DataFrame,
    significance: pd.DataFrame,
    criteria: dict[str, str],
    title: str,
    coverage: str,
) -> str:
    """Per task, each method under its own criterion: its difference from the full model
    of its backbone with the Holm-adjusted p-value of that pair, and from the static
    curve at the same FLOPs, each with its interval."""
    chosen = select_criteria(summary, criteria, include_oracle=False)
    rows = []
    for row in chosen.sort_values(["task", "test_split", "method"]).itertuples():
        rows.append(
            {
                "Task": row.task if row.test_split == "test" else f"{row.task} · {row.test_split}",
                "Method": row.method,
                "Policy": row.policy,
                "− full model": interval_text(
                    row.vs_full_model, row.vs_full_model_lo, row.vs_full_model_hi, 100
                ),
                "p (Holm)": _pair_p(significance, row),
                "− static curve": interval_text(
                    row.vs_curve, row.vs_curve_lo, row.vs_curve_hi, 100
                ),
            }
        )
    table = pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)
    note = (
        "Test split, at the knob chosen on dev. − full model: score minus that of plain "
        "fine-tuning of the same backbone; − static curve: score minus the static curve's at "
        "the same FLOPs; points ×100. p: paired bootstrap test of the difference from the full "
        f"model, Holm-adjusted over the task's pairs. [interval]: {coverage}."
    )
    return f"# {title}\n\n{table}\n\n{note}\n"


def _pair_p(significance: pd.DataFrame, row) -> str:
    if pd.isna(row.full_model) or row.full_model == row.method:
        return "–"
    pair = significance[
        (significance.task == row.task)
        & (significance.test_split == row.test_split)
        & (
            ((significance.method_a == row.method) & (significance.method_b == row.full_model))
            | ((significance.method_b == row.method) & (significance.method_a == row.full_model))
        )
    ]
    if pair.empty:
        return "–"
    p = float(pair.p_holm.iloc[0])
    return "< 0.001" if p < 0.001 else f"{p:.3f}"
