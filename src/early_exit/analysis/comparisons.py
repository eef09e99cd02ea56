"""The significance figure and table of the family of tests (`significance.tsv`,
written by the `operating_points` rule; `analysis.significance`); notebooks call these."""

from __future__ import annotations

import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from early_exit.analysis.plots import CONTEXT, SLIDE_FIGURE_IN
from early_exit.analysis.results import dense_table, interval_text
from early_exit.analysis.significance import COMPARISONS
from early_exit.support.errors import DataError


def panels(significance: pd.DataFrame) -> list[tuple[str, str]]:
    """(task, test split) of each family, in order."""
    keys = significance[["task", "test_split"]].drop_duplicates()
    return sorted(map(tuple, keys.to_numpy()))


def score_rows_of(significance: pd.DataFrame, task: str, split: str) -> pd.DataFrame:
    """The family's score comparisons of one task and test split, method by method."""
    rows = significance[
        (significance.task == task)
        & (significance.test_split == split)
        & (significance.quantity == "score")
    ]
    order = {name: i for i, name in enumerate(COMPARISONS)}
    rank = rows.comparison.map(order).fillna(len(order))
    return rows.assign(_rank=rank).sort_values(["method", "_rank"]).drop(columns="_rank")


def significance_figure(significance: pd.DataFrame, level: float) -> matplotlib.figure.Figure:
    """One panel per task, one row per early-exit method: each score comparison of the
    family (points x100, a colour per comparison, side by side in the row) with its
    interval; filled markers are significant at `level` after Holm over the family. Drawn
    at the size a slide shows it, the legend right of the panels."""
    keys = panels(significance)
    width, height = SLIDE_FIGURE_IN
    with sns.plotting_context(CONTEXT), sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(
            1, max(len(keys), 1), figsize=(width, height), squeeze=False, sharey=True,
            layout="constrained",
        )  # fmt: skip
        colours = dict(
            zip(COMPARISONS, sns.color_palette("colorblind", len(COMPARISONS)), strict=True)
        )
        methods = sorted(set(significance.get("method", [])))
        rows = {m: len(methods) - 1 - i for i, m in enumerate(methods)}  # first on top
        shown = [c for c in COMPARISONS if c in set(significance.get("comparison", []))]
        step = 0.8 / max(len(shown), 1)
        for ax, (task, split) in zip(axes.flat, keys, strict=False):
            for row in score_rows_of(significance, task, split).itertuples():
                colour = colours.get(row.comparison, "0.3")
                k = shown.index(row.comparison) if row.comparison in shown else 0
                yi = rows[row.method] + 0.4 - step * (k + 0.5)
                err = [[100 * (row.value - row.value_lo)], [100 * (row.value_hi - row.value)]]
                ax.errorbar(100 * row.value, yi, xerr=err, fmt="none", ecolor=colour, capsize=3)
                ax.plot(
                    100 * row.value, yi, "o", color=colour, markersize=9,
                    markerfacecolor=colour if _true(row.significant) else "white",
                )  # fmt: skip
            ax.axvline(0, color="0.3", lw=0.8)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
            ax.set_yticks(list(rows.values()), list(rows))
            ax.set_xlabel("points ×100")
            ax.set_title(task if split == "test" else f"{task} · {split}", fontsize="medium")
        handles = [
            Line2D([], [], color=colours[c], marker="o", linestyle="", markersize=9, label=c)
            for c in shown
        ]
        handles.append(
            Line2D([], [], color="0.3", marker="o", markerfacecolor="white", linestyle="",
                   markersize=9, label=f"open: not significant\nat {level:g} (Holm)")
        )  # fmt: skip
        fig.legend(handles=handles, loc="outside right center", frameon=False)
    return fig


def _true(value) -> bool:
    """The `significant` column: bool, or its text when read back."""
    return str(value).strip().lower() == "true"


def _cell(row, scale: float = 100, digits: int = 1) -> str:
    text = interval_text(row.value, row.value_lo, row.value_hi, scale, digits)
    p = row.p_adjusted
    return text if pd.isna(p) else f"{text}, p {'< 0.001' if p < 0.001 else f'{p:.3f}'}"


def differences_markdown(
    summary: pd.DataFrame,
    significance: pd.DataFrame,
    criteria: dict[str, str],
    title: str,
    coverage: str,
) -> str:
    """Per task, each early-exit method under its own criterion: the family's comparisons
    (drop, vs fine-tuning, vs static curve; FLOPs vs fine-tuning), each with its interval
    and Holm-adjusted p-value. `summary` and `criteria` name the methods shown (the
    family's own rows decide)."""
    headers = {
        ("drop", "score"): "Drop",
        ("vs fine-tuning", "score"): "vs fine-tuning",
        ("vs static curve", "score"): "vs static curve",
        ("vs fine-tuning", "flops"): "GFLOPs vs fine-tuning",
    }
    rows = []
    for (task, split, method), group in significance.groupby(
        ["task", "test_split", "method"], sort=True
    ):
        row = {
            "Task": task if split == "test" else f"{task} · {split}",
            "Method": method,
            "Policy": group.policy.iloc[0],
        }
        for (comparison, quantity), header in headers.items():
            found = group[(group.comparison == comparison) & (group.quantity == quantity)]
            scale, digits = (1e-9, 2) if quantity == "flops" else (100, 1)
            row[header] = _cell(found.iloc[0], scale, digits) if len(found) else "–"
        rows.append(row)
    table = pd.DataFrame(rows, columns=["Task", "Method", "Policy", *headers.values()])
    tests = sorted(set(significance.test)) if len(significance) else []
    sizes = significance.groupby("family").family_size.first() if len(significance) else []
    note = (
        "Test split, at the knob chosen on dev; points ×100. Drop: own full model (the same "
        "run, every example at the last exit) − early exit; vs fine-tuning: early exit − plain "
        "fine-tuning of the same backbone; vs static curve: early exit − the static curve at "
        "the same FLOPs. Family fixed in advance: these comparisons of every early-exit "
        f"method of a task ({', '.join(f'{k}: {v} tests' for k, v in dict(sizes).items())}); "
        f"tests at the chosen knobs: {', '.join(tests) or '–'}; p: Holm-adjusted over the "
        f"family. [interval]: {coverage}."
    )
    markdown = table.to_markdown(index=False, disable_numparse=True)
    return f"# {title}\n\n{dense_table(markdown)}\n\n{note}\n"


def guarantee_markdown(
    points: pd.DataFrame,
    criteria: dict[str, str],
    static: list[str],
    max_drop: float,
    guarantee: dict,
    title: str,
) -> str:
    """Per task and early-exit run under its own criterion: the knob of the point rule
    next to the Learn-then-Test knob (`ltt_*` columns of the operating points), each with
    its test drop and layer speed-up, and the guaranteed knob's risk on dev and test."""
    from early_exit.exits.operating_points import Guarantee

    g = Guarantee.from_config(guarantee)
    if "ltt_certified" not in points:
        raise DataError(
            "operating points table: no ltt_* columns (an older table): rerun rule operating_points"
        )
    chosen = points[
        (points.policy == points.method.map(criteria))
        & ~points.method.isin(static)
        & (points.test_split == "test")
    ]
    rows = []
    for row in chosen.sort_values(["task", "method", "seed"]).itertuples():
        certified = str(row.ltt_certified) == "True"  # a bool, or read back from TSV
        if str(row.ltt_certified) not in ("True", "False"):  # regression: none computed
            continue
        rows.append(
            {
                "Task": row.task,
                "Method": row.method,
                "Seed": row.seed,
                "Point rule: knob": f"{row.threshold:.3g}",
                "drop": f"{100 * (row.test_score_full - row.test_score):.1f}",
                "speed-up": f"{row.test_speedup:.2f}×",
                "same knob on resampled dev": (
                    f"{100 * row.dev_knob_agreement:.0f}%"
                    if not pd.isna(getattr(row, "dev_knob_agreement", np.nan))
                    else "–"
                ),
                "Guaranteed: knob": f"{row.ltt_threshold:.3g}" if certified else "full model",
                "drop ": f"{100 * row.ltt_test_drop:.1f}",
                "speed-up ": f"{row.ltt_test_speedup:.2f}×",
                f"{g.risk} dev → test": (
                    f"{100 * row.ltt_dev_risk:.1f} → {100 * row.ltt_test_risk:.1f}"
                    if certified
                    else "–"
                ),
            }
        )
    table = pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True) if rows else "–"
    risk = (
        "disagreement with the same model's full-depth answers"
        if g.risk == "disagreement"
        else "the share of examples the full model gets right and the early exit wrong"
    )
    note = (
        f"Test split; points ×100. Point rule: the fastest knob within {max_drop * 100:g} "
        "points of the full model's dev score (no guarantee). Guaranteed (Learn-then-Test): "
        f"the fastest knob whose risk ({risk}) is at most {g.delta * 100:g}% with probability "
        f"at least {1 - g.epsilon:g} over the dev split (binomial-tail p-values, fixed-sequence "
        "testing from conservative to aggressive; the full model when no knob is certified). "
        "Same knob on resampled dev: the share of bootstrap resamples of dev on which the point "
        "rule chooses the same knob (how stable the choice is). Drop: own full model − early "
        "exit."
    )
    return f"# {title}\n\n{table}\n\n{note}\n"
