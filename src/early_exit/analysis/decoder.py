"""The decoder stage's notebook (notebooks/decoder.py) and slides: its tables read back,
the quality-against-speed and acceptance figures, the markdown table, and the sentences
the slides say, all computed from the stage's tables (early_exit.decoder.stage)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from early_exit.analysis.plots import CONTEXT, LEGEND_IN, SLIDE_FIGURE_IN
from early_exit.support.errors import DataError
from early_exit.support.tables import read_table

KIND_ORDER = ["greedy", "walk", "speculative", "calm", "peer"]
KIND_LABEL = {
    "greedy": "greedy (generate)",
    "walk": "greedy, our layer walk",
    "speculative": "self-speculative (ours)",
    "calm": "CALM-style exits (ours)",
    "peer": "peer: assistant_early_exit",
}
SUMMARY_COLUMNS = [
    "method", "kind", "prompts", "tokens_per_s", "tokens_per_s_lo", "tokens_per_s_hi",
    "speed_vs_greedy", "speed_vs_greedy_lo", "speed_vs_greedy_hi", "equals_greedy",
    "agreement", "agreement_lo", "agreement_hi", "perplexity", "perplexity_lo", "perplexity_hi",
]  # fmt: skip


def kind_palette() -> dict[str, tuple]:
    """One colour per kind of method (seaborn's colorblind palette, as plots.py uses)."""
    colours = sns.color_palette("colorblind", 10)
    return {kind: colours[index] for index, kind in enumerate(KIND_ORDER)}


def load_tables(paths: dict) -> dict:
    """The stage's tables by name (summary, check, speculative, calm, perplexity, training)."""
    rule = {"summary": "decoder_benchmark", "check": "decoder_benchmark"}
    found = {}
    for name in ("summary", "check", "speculative", "calm", "perplexity"):
        if paths.get(name):
            found[name] = read_table(
                paths[name], f"decoder {name} table", f"rule {rule.get(name, 'decoder_sweep')}"
            )
    missing = [c for c in SUMMARY_COLUMNS if "summary" in found and c not in found["summary"]]
    if missing:
        raise DataError(f"{paths['summary']}: lacks columns {', '.join(missing)}")
    if paths.get("training"):
        try:
            found["training"] = json.loads(Path(paths["training"]).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise DataError(f"{paths['training']}: cannot read it ({err})") from None
    return found


def interval(value, low, high, digits: int = 2, unit: str = "") -> str:
    """`0.59× [0.45, 0.70]`; without an interval (one prompt, no spread) the value alone."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = f"{value:.{digits}f}{unit}"
    if low is None or any(isinstance(v, float) and math.isnan(v) for v in (low, high)):
        return text
    return f"{text} [{low:.{digits}f}, {high:.{digits}f}]"


def _cell(row, name: str, digits: int = 2, unit: str = "") -> str:
    if name not in row or pd.isna(row[name]):
        return ""
    return interval(row[name], row.get(f"{name}_lo"), row.get(f"{name}_hi"), digits, unit)


def summary_markdown(summary: pd.DataFrame) -> str:
    """The benchmark table: every figure with its interval over the prompts."""
    lines = [
        "| method | tokens/s | speed vs greedy | output = greedy | acceptance "
        "| tokens / verification | mean exit layer | agreement | perplexity "
        "| simulated speed-up (cost model) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for _, row in summary.iterrows():
        simulated = row.get("simulated_model_speedup")
        lines.append(
            f"| {row.method} | {_cell(row, 'tokens_per_s', 1)} "
            f"| {_cell(row, 'speed_vs_greedy', 2, '×')} "
            f"| {row.equals_greedy * row.prompts:.0f} of {row.prompts} "
            f"| {_cell(row, 'acceptance', 3)} | {_cell(row, 'tokens_per_verification', 2)} "
            f"| {_cell(row, 'mean_exit_layer', 1)} | {_cell(row, 'agreement', 3)} "
            f"| {_cell(row, 'perplexity', 2)} "
            f"| {'' if pd.isna(simulated) else f'{simulated:.2f}×'} |"
        )
    prompts = int(summary.prompts.max())
    rounds = int(summary["rounds"].max()) if "rounds" in summary else 0
    lines += [
        "",
        f"{prompts} prompts, {rounds} interleaved rounds, batch 1; [95% bootstrap interval "
        "over prompts]. Agreement: share of tokens that are the full model's greedy choice "
        "given the same prefix; perplexity: of the method's output under the full model.",
    ]
    return "\n".join(lines)


def perplexity_markdown(perplexity: pd.DataFrame, num_layers: int | None = None) -> str:
    top = num_layers or int(perplexity.layer.max())
    cells = [
        f"{'full model' if row.layer == top else f'exit {row.layer}'}: "
        f"{interval(row.perplexity, row.ci_low, row.ci_high, 1)}"
        for row in perplexity.itertuples()
    ]
    texts = int(perplexity.texts.iloc[0])
    return (
        f"Held-out perplexity ({texts} dev stories, teacher-forced, [95% bootstrap interval over "
        "texts]): " + "; ".join(cells)
    )


def tradeoff_figure(summary: pd.DataFrame) -> matplotlib.figure.Figure:
    """Agreement and perplexity against measured speed relative to greedy, per method."""
    with sns.plotting_context(CONTEXT), sns.axes_style("whitegrid"):
        return _tradeoff_figure(summary)


def _slide_layout(fig, axes, title: str) -> None:
    """The deck's figure size, the title, the legend in a column right of the panels."""
    handles, labels = axes[0].get_legend_handles_labels()
    right = 1 - LEGEND_IN / SLIDE_FIGURE_IN[0]
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(right, 0.5), frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, right, 1))


def _tradeoff_figure(summary: pd.DataFrame) -> matplotlib.figure.Figure:
    palette = kind_palette()
    fig, axes = plt.subplots(1, 2, figsize=SLIDE_FIGURE_IN)
    for ax, (column, label) in zip(
        axes,
        [
            ("agreement", "agreement with the full model"),
            ("perplexity", "perplexity under the full model"),
        ],
        strict=True,
    ):
        for _, row in summary.iterrows():
            x, y = row.speed_vs_greedy, row[column]
            xerr = [[x - row.speed_vs_greedy_lo], [row.speed_vs_greedy_hi - x]]
            yerr = [[y - row[f"{column}_lo"]], [row[f"{column}_hi"] - y]]
            if any(pd.isna(v) for v in (*xerr[0], *xerr[1])):
                xerr = None
            if any(pd.isna(v) for v in (*yerr[0], *yerr[1])):
                yerr = None
            ax.errorbar(
                x,
                y,
                xerr=xerr,
                yerr=yerr,
                fmt="s" if row.kind == "greedy" else "o",  # greedy and the walk coincide:
                color=palette[row.kind],  # a large square under a dot shows both
                capsize=3,
                label=row.method,
                markersize=14 if row.kind == "greedy" else 8,
            )
        ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
        ax.set_xlabel("measured speed vs plain greedy (×)")
        ax.set_ylabel(label)
        if column == "perplexity":
            ax.set_yscale("log")
    prompts = int(summary.prompts.max())
    _slide_layout(fig, axes, f"Quality against measured speed ({prompts} prompts, batch 1)")
    return fig


def acceptance_figure(sweep: pd.DataFrame, summary: pd.DataFrame) -> matplotlib.figure.Figure:
    """Acceptance and tokens per verification against the draft exit layer E: simulated
    lines (one per draft length k), measured points with their intervals."""
    with sns.plotting_context(CONTEXT), sns.axes_style("whitegrid"):
        return _acceptance_figure(sweep, summary)


def _acceptance_figure(sweep: pd.DataFrame, summary: pd.DataFrame) -> matplotlib.figure.Figure:
    fig, axes = plt.subplots(1, 2, figsize=SLIDE_FIGURE_IN)
    drafts = sorted(sweep.draft.unique())
    colours = dict(zip(drafts, sns.color_palette("viridis", len(drafts)), strict=True))
    measured = summary[summary.kind == "speculative"]
    for ax, column in zip(axes, ["acceptance", "tokens_per_verification"], strict=True):
        for k in drafts:
            part = sweep[sweep.draft == k].sort_values("layer")
            label = f"simulated k={k}"
            ax.plot(part.layer, part[column], marker=".", color=colours[k], label=label)
            ax.fill_between(
                part.layer, part[f"{column}_lo"], part[f"{column}_hi"], color=colours[k], alpha=0.12
            )
        for _, row in measured.iterrows():
            y = row[column]
            yerr = [[y - row[f"{column}_lo"]], [row[f"{column}_hi"] - y]]
            if any(pd.isna(v) for v in (*yerr[0], *yerr[1])):
                yerr = None
            ax.errorbar(
                row.layer,
                y,
                yerr=yerr,
                fmt="*",
                markersize=14,
                color=colours.get(row.draft, "black"),
                markeredgecolor="black",
                capsize=3,
                label=f"measured E={row.layer:.0f} k={row.draft:.0f}",
            )
        ax.set_xlabel("draft exit layer E")
        ax.set_ylabel(column.replace("_", " "))
    prompts = int(sweep.prompts.max())
    _slide_layout(fig, axes, f"Simulated and measured ({prompts} prompts)")
    return fig


# --------------------------------------------------------------------------- sentences


def verdict(row) -> str:
    """Whether a method's speed against greedy held up (interval above 1), did not (below)."""
    low, high = row.speed_vs_greedy_lo, row.speed_vs_greedy_hi
    if pd.isna(low):
        return "faster than greedy" if row.speed_vs_greedy > 1 else "slower than greedy"
    if low > 1:
        return "faster than greedy (interval above 1)"
    if high < 1:
        return "slower than greedy (interval below 1)"
    return "no different from greedy within the interval"


def findings(tables: dict) -> list[str]:
    """Sentences computed from the tables: what held up on this machine and what did not."""
    summary = tables["summary"]
    lines = []
    by_kind = {kind: summary[summary.kind == kind] for kind in KIND_ORDER}
    walk = by_kind["walk"]
    if len(walk):
        row = walk.iloc[0]
        lines.append(
            f"Our layer walk (greedy, no exit) runs at {_cell(row, 'speed_vs_greedy', 2, '×')} "
            "of `generate`: walking the layers from Python costs "
            + ("little." if row.speed_vs_greedy > 0.9 else "measurably.")
        )
    peers = by_kind["peer"]
    for _, row in by_kind["speculative"].iterrows():
        same = f"{row.equals_greedy * row.prompts:.0f} of {row.prompts}"
        text = (
            f"Self-speculative E={row.layer:.0f}, k={row.draft:.0f}: output equal to greedy on "
            f"{same} prompts, acceptance {_cell(row, 'acceptance', 3)}, "
            f"{_cell(row, 'speed_vs_greedy', 2, '×')} of greedy: {verdict(row)}"
        )
        if len(peers):
            best = peers.sort_values("speed_vs_greedy").iloc[-1]
            ratio = row.speed_vs_greedy / best.speed_vs_greedy
            text += (
                f"; the peer ({best.method}) at {_cell(best, 'speed_vs_greedy', 2, '×')}, so "
                f"ours runs at {ratio:.2f}× the peer's speed"
            )
        lines.append(text + ".")
    for _, row in by_kind["calm"].iterrows():
        lines.append(
            f"CALM t={row.threshold:g}: mean exit layer {_cell(row, 'mean_exit_layer', 1)}, "
            f"agreement with the full model {_cell(row, 'agreement', 3)}, "
            f"{_cell(row, 'speed_vs_greedy', 2, '×')} of greedy: {verdict(row)}."
        )
    check = tables.get("check")
    if check is not None and len(check):
        for kind, label in (("speculative", "accepted drafts per round"), ("calm", "exit layers")):
            part = check[check.kind == kind]
            if len(part):
                ok = int(part.ok.astype(bool).sum())
                lines.append(
                    f"Simulation against the real run ({kind}, {label}): holds on {ok} of "
                    f"{len(part)} prompt runs."
                )
    return lines
