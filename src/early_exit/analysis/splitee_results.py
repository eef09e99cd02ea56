"""SplitEE results: summaries over stream orders and seeds, figures and the report table.

The simulation itself is `early_exit.exits.splitee`; this module reads its tables
(`results/splitee/{source}/{target}/{method}/seed{seed}/splitee.tsv` and `regret.tsv`).
Accuracy drop and cost reduction are against final-layer inference of the same run
on the same stream (cost lambda L). The paper's headline, more than 50% cost reduction
at less than 2 points accuracy drop against final-layer inference, is checked per pair,
threshold alpha, offloading cost and policy (`headline`, the `headline` column); a policy
that offloads (nearly) every example does not count: its saving is the cheap offloading
cost, not early exiting on the device. Scores are x100, as everywhere in the deck; the
deck's SplitEE slides are written from the summary by `early_exit.slides.splitee_slides`.
"""

from __future__ import annotations

import matplotlib.figure
import numpy as np
import pandas as pd
import seaborn as sns

from early_exit.analysis.plots import CONTEXT, SCORE_SCALE, facet_size
from early_exit.support.tables import read_tables, write_table

PAIR = ["source", "target", "method"]
BANDITS = ("splitee", "splitee-s")
SHOWN = ("final-layer", "early-exit", "best-fixed", *BANDITS)  # fixed-<layer> stay in the TSV
# one colour per policy in both SplitEE figures (seaborn's colorblind palette: the bandits
# in the colours no method of the trade-off figures uses)
POLICY_PALETTE = {
    "final-layer": "0.25",
    "early-exit": "#949494",
    "best-fixed": "#ca9161",
    "splitee": "#0173b2",
    "splitee-s": "#d55e00",
}
MEASURES = ["accuracy", "cost_reduction", "offload_rate", "avg_split_layer", "regret"]
HEADLINE_REDUCTION = 0.5  # the paper: more than 50% cost reduction ...
HEADLINE_DROP = 2.0  # ... at less than 2 points accuracy drop against the final layer
# ... by early exiting: a policy offloading at least this share of the stream answers
# (nearly) nothing on the device, and its saving is only that o < lambda (L - split layer)
OFFLOAD_ALL = 0.99


def _alpha(table: pd.DataFrame) -> pd.DataFrame:
    """Tables written before several thresholds were simulated have one alpha column too."""
    return table if "alpha" in table else table.assign(alpha=float("nan"))


def _at_cost(table: pd.DataFrame, offload_cost: float | None) -> tuple[float, pd.DataFrame]:
    """The offloading cost a figure shows (default: `shown_cost`) and the table's rows at
    it, each with its pair named and alpha as a label ("–": no threshold)."""
    table = _alpha(table)
    o = shown_cost(table) if offload_cost is None else offload_cost
    table = table[np.isclose(table.offload_cost, o)]
    return o, table.assign(
        pair=table.source + " → " + table.target,
        alpha_label=table.alpha.map(lambda a: "–" if pd.isna(a) else f"{a:g}"),
    )


def headline(cost_reduction, accuracy_drop, offload_rate):
    """Whether the paper's headline condition holds: > 50% cost reduction at < 2 points drop,
    with the device answering some of the stream (offloading everything does not count)."""
    return (
        (cost_reduction > HEADLINE_REDUCTION)
        & (accuracy_drop < HEADLINE_DROP)
        & (offload_rate < OFFLOAD_ALL)
    )


KEY_COLUMNS = (*PAIR, "seed", "offload_cost", "order", "policy")  # splitee.tsv and regret.tsv


def load_tables(paths: list[str]) -> pd.DataFrame:
    """SplitEE tables or their regret curves (papermill passes them comma-joined: empty
    names are skipped), naming any missing, empty, cut-short or garbled one."""
    paths = [p for p in paths if p]
    return read_tables(paths, "SplitEE table", "rule splitee", columns=KEY_COLUMNS)


def with_drop(table: pd.DataFrame) -> pd.DataFrame:
    """Add `accuracy_drop`: points below final-layer inference of the same run and order."""
    table = _alpha(table)
    keys = [*PAIR, "seed", "alpha", "offload_cost", "order"]
    final = table[table.policy == "final-layer"].set_index(keys).accuracy.rename("final_acc")
    out = table.join(final, on=keys)
    out["accuracy_drop"] = 100 * (out.final_acc - out.accuracy)
    return out.drop(columns="final_acc")


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over stream orders and seeds, per pair, alpha, o and
    policy, with whether the mean meets the paper's headline (`headline`)."""
    data = with_drop(table)
    stats = data.groupby([*PAIR, "alpha", "offload_cost", "policy"], dropna=False)[
        [*MEASURES, "accuracy_drop"]
    ]
    mean, std = stats.mean(), stats.std(ddof=0)
    out = mean.join(std.add_suffix("_std")).reset_index()
    out["headline"] = headline(out.cost_reduction, out.accuracy_drop, out.offload_rate)
    return out


def write_summary(summ: pd.DataFrame, path) -> None:
    write_table(summ, path)


def shown_cost(summ: pd.DataFrame) -> float:
    """The offloading cost the deck and the report table show: the median one simulated."""
    costs = sorted(summ.offload_cost.unique())
    return float(costs[len(costs) // 2])


def regret_figure(
    regret: pd.DataFrame, offload_cost: float | None = None
) -> matplotlib.figure.Figure:
    """Cumulative regret over the stream (mean and spread over orders and seeds) at one
    offloading cost (default: the median, `shown_cost`), one panel per pair, one colour per
    bandit and one line style per threshold alpha: drawn at the size it is shown."""
    o, data = _at_cost(regret, offload_cost)
    data = data.assign(alpha=data.alpha_label)
    pairs = data.pair.nunique()
    with sns.plotting_context(CONTEXT), sns.axes_style("whitegrid"):
        grid = sns.relplot(
            data=data,
            x="step",
            y="regret",
            hue="policy",
            style="alpha" if data.alpha.nunique() > 1 else None,
            col="pair",
            kind="line",
            errorbar="sd",
            palette=POLICY_PALETTE,
            facet_kws={"sharey": False},
            **facet_size(pairs),
        )
        grid.set_axis_labels("samples seen", f"cumulative regret (o = {o:g})")
        grid.set_titles("{col_name}")
    return grid.figure


def tradeoff_figure(
    summ: pd.DataFrame, offload_cost: float | None = None
) -> matplotlib.figure.Figure:
    """Accuracy x100 against cost reduction (vs final-layer inference) at one offloading cost
    (default: the median, `shown_cost`), one point per policy (colour) and threshold alpha
    (marker), one panel per pair; the shaded corner is the paper's headline region (> 50%
    reduction at < 2 points drop). Drawn at the size it is shown, legend outside."""
    o, summ = _at_cost(summ, offload_cost)
    data = summ[summ.policy.isin(SHOWN)].assign(
        cost_reduction_pct=100 * summ.cost_reduction,
        accuracy_x100=SCORE_SCALE * summ.accuracy,
        alpha=summ.alpha_label,
    )
    with sns.plotting_context(CONTEXT), sns.axes_style("whitegrid"):
        grid = sns.relplot(
            data=data,
            x="cost_reduction_pct",
            y="accuracy_x100",
            hue="policy",
            hue_order=[p for p in SHOWN if p in set(data.policy)],
            palette=POLICY_PALETTE,
            style="alpha" if data.alpha.nunique() > 1 else None,
            s=160,
            col="pair",
            kind="scatter",
            facet_kws={"sharey": False},
            **facet_size(data.pair.nunique()),
        )
        grid.set_axis_labels("cost reduction (%)", f"accuracy ×{SCORE_SCALE}")
        grid.set_titles("{col_name}")  # o: in the slide's caption
        for pair, ax in grid.axes_dict.items():
            final = data[(data.pair == pair) & (data.policy == "final-layer")].accuracy_x100
            if len(final):
                top = float(final.mean())
                ax.fill_between(
                    [100 * HEADLINE_REDUCTION, 100],
                    top - HEADLINE_DROP,
                    top + 1,
                    color="0.85",
                    zorder=0,
                    label="_headline",
                )
    return grid.figure


def splitee_markdown(summ: pd.DataFrame, offload_cost: float | None = None) -> str:
    """One row per pair, threshold and shown policy at one offloading cost (default: the
    median one), then one line per pair and offloading cost saying which policies meet the
    paper's headline (> 50% cost reduction at < 2 points drop, not by offloading all)."""
    summ = _alpha(summ)
    o = shown_cost(summ) if offload_cost is None else offload_cost
    rows = []
    data = summ[(summ.offload_cost == o) & summ.policy.isin(SHOWN)]
    for (source, target, method, alpha), group in data.groupby(
        [*PAIR, "alpha"], sort=True, dropna=False
    ):
        for policy in SHOWN:
            r = group[group.policy == policy]
            if r.empty:
                continue
            r = r.iloc[0]
            rows.append(
                {
                    "Stream": f"{source} → {target}",
                    "Method": method,
                    "α": "" if pd.isna(alpha) else f"{alpha:g}",
                    "Policy": policy,
                    f"Accuracy ×{SCORE_SCALE}": f"{SCORE_SCALE * r.accuracy:.1f} ± "
                    f"{SCORE_SCALE * r.accuracy_std:.1f}",
                    "Drop (points)": f"{r.accuracy_drop:.1f}",
                    "Cost reduction": f"{100 * r.cost_reduction:.0f}%",
                    "Offloaded": f"{100 * r.offload_rate:.0f}%",
                    "Split layer": f"{r.avg_split_layer:.1f}",
                    "Headline": headline_text(r),
                }
            )
    table = pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)
    note = (
        f"Offloading cost o = {o:g}; mean ± std over stream orders and seeds. Drop and cost "
        "reduction are against final-layer inference (every layer on the device, cost λL). "
        "Headline: the paper's condition, > 50% cost reduction at < 2 points drop, by "
        "answering on the device (offloading everything does not count)."
    )
    return f"# SplitEE\n\n{table}\n\n{note}\n\n{headline_lines(summ)}\n"


def offloads_all(row) -> bool:
    """Whether a summary row offloads (nearly) every example (`OFFLOAD_ALL`)."""
    return bool(row.offload_rate >= OFFLOAD_ALL)


def headline_text(row) -> str:
    """`yes`, `no`, or why a row inside the headline region does not count."""
    if row.headline:
        return "yes"
    inside = row.cost_reduction > HEADLINE_REDUCTION and row.accuracy_drop < HEADLINE_DROP
    return "no (offloads all)" if inside and offloads_all(row) else "no"


def headline_lines(summ: pd.DataFrame) -> str:
    """Per pair and offloading cost: the bandits that meet the paper's headline (at any
    simulated alpha), or that none does."""
    summ = _alpha(summ)
    lines = []
    bandits = summ[summ.policy.isin(BANDITS)]
    for (source, target, method), group in bandits.groupby(PAIR, sort=True):
        parts = []
        for o, at_o in group.groupby("offload_cost", sort=True):
            met = at_o[at_o.headline]
            held = ", ".join(
                policy
                + (
                    ""
                    if by.alpha.isna().all()
                    else " (α " + "/".join(f"{a:g}" for a in by.alpha) + ")"
                )
                for policy, by in met.groupby("policy", sort=True)
            )
            parts.append(f"o = {o:g}: {held if held else 'not met'}")
        lines.append(f"- {source} → {target} ({method}), headline met by: " + "; ".join(parts))
    return "\n".join(lines)
