"""SplitEE results: summaries over stream orders and seeds, figures and tables.

The simulation itself is `early_exit.exits.splitee`; this module reads its tables
(`results/splitee/{source}/{target}/{method}/seed{seed}/splitee.tsv` and `regret.tsv`).
Accuracy drop and cost reduction are against final-layer inference of the same run
on the same stream (cost lambda L). The paper's headline, more than 50% cost reduction
at less than 2 points accuracy drop against final-layer inference, is checked per pair,
threshold alpha, offloading cost and policy (`headline`, the `headline` column).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.figure
import pandas as pd
import seaborn as sns

from early_exit.analysis.plots import CONTEXT
from early_exit.support.atomic import write_text
from early_exit.support.tables import read_tables, write_table

PAIR = ["source", "target", "method"]
BANDITS = ("splitee", "splitee-s")
SHOWN = ("final-layer", "early-exit", "best-fixed", *BANDITS)  # fixed-<layer> stay in the TSV
MEASURES = ["accuracy", "cost_reduction", "offload_rate", "avg_split_layer", "regret"]
HEADLINE_REDUCTION = 0.5  # the paper: more than 50% cost reduction ...
HEADLINE_DROP = 2.0  # ... at less than 2 points accuracy drop against the final layer


def _alpha(table: pd.DataFrame) -> pd.DataFrame:
    """Tables written before several thresholds were simulated have one alpha column too."""
    return table if "alpha" in table else table.assign(alpha=float("nan"))


def headline(cost_reduction, accuracy_drop):
    """Whether the paper's headline condition holds: > 50% cost reduction at < 2 points drop."""
    return (cost_reduction > HEADLINE_REDUCTION) & (accuracy_drop < HEADLINE_DROP)


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
    out["headline"] = headline(out.cost_reduction, out.accuracy_drop)
    return out


def write_summary(summ: pd.DataFrame, path) -> None:
    write_table(summ, path)


def regret_figure(regret: pd.DataFrame) -> matplotlib.figure.Figure:
    """Cumulative regret over the stream (mean and spread over orders and seeds), one
    panel per pair, one line style per bandit, colour by offloading cost."""
    data = _alpha(regret).assign(pair=regret.source + " → " + regret.target)
    several = data.alpha.nunique() > 1
    with sns.plotting_context(CONTEXT, font_scale=0.7):
        grid = sns.relplot(
            row="alpha" if several else None,
            data=data,
            x="step",
            y="regret",
            hue="offload_cost",
            style="policy",
            col="pair",
            kind="line",
            errorbar="sd",
            palette="viridis",
            height=3.6,
            aspect=1.3,
            facet_kws={"sharey": False},
        )
        grid.set_axis_labels("samples seen", "cumulative regret")
        grid.set_titles("{col_name}, α = {row_name}" if several else "{col_name}")
    return grid.figure


def tradeoff_figure(summ: pd.DataFrame) -> matplotlib.figure.Figure:
    """Accuracy against cost reduction (vs final-layer inference), one point per policy,
    threshold alpha (marker) and offloading cost (size), one panel per pair; the shaded
    corner is the paper's headline region (> 50% reduction at < 2 points drop)."""
    summ = _alpha(summ)
    data = summ[summ.policy.isin(SHOWN)].assign(
        pair=summ.source + " → " + summ.target,
        cost_reduction_pct=100 * summ.cost_reduction,
        accuracy_pct=100 * summ.accuracy,
    )
    with sns.plotting_context(CONTEXT, font_scale=0.7):
        grid = sns.relplot(
            data=data,
            x="cost_reduction_pct",
            y="accuracy_pct",
            hue="policy",
            hue_order=list(SHOWN),
            size="offload_cost",
            style="alpha" if data.alpha.nunique() > 1 else None,
            col="pair",
            kind="scatter",
            height=3.6,
            aspect=1.2,
            facet_kws={"sharey": False},
        )
        grid.set_axis_labels("cost reduction vs final layer (%)", "accuracy (%)")
        grid.set_titles("{col_name}")
        for pair, ax in grid.axes_dict.items():
            final = data[(data.pair == pair) & (data.policy == "final-layer")].accuracy_pct
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
    paper's headline (> 50% cost reduction at < 2 points drop)."""
    summ = _alpha(summ)
    costs = sorted(summ.offload_cost.unique())
    o = costs[len(costs) // 2] if offload_cost is None else offload_cost
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
                    "Accuracy": f"{100 * r.accuracy:.1f} ± {100 * r.accuracy_std:.1f}",
                    "Drop (points)": f"{r.accuracy_drop:.1f}",
                    "Cost reduction": f"{100 * r.cost_reduction:.0f}%",
                    "Offloaded": f"{100 * r.offload_rate:.0f}%",
                    "Split layer": f"{r.avg_split_layer:.1f}",
                    "Headline": "yes" if r.headline else "no",
                }
            )
    table = pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)
    note = (
        f"Offloading cost o = {o:g}; mean ± std over stream orders and seeds. Drop and cost "
        "reduction are against final-layer inference (every layer on the device, cost λL). "
        "Headline: the paper's condition, > 50% cost reduction at < 2 points drop."
    )
    return f"# SplitEE\n\n{table}\n\n{note}\n\n{headline_lines(summ)}\n"


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


def deck_markdown(table_md: str | None) -> str:
    """The deck's SplitEE slides: trade-off and regret figures and the table, or one
    slide saying the run has no `splitee:` section (so the deck builds either way)."""
    if table_md is None:
        return (
            "# SplitEE: online split computing\n\n"
            "This run has no `splitee:` section in its config: no stream was simulated.\n"
        )
    body = table_md.split("\n", 1)[1].strip()  # drop the table's own title
    return (
        "# SplitEE: learning the split layer online\n\n"
        '<img src="/figures/splitee_tradeoff.png" class="figure" '
        'alt="Accuracy against cost reduction for SplitEE, SplitEE-S and the baselines" />\n\n'
        '<p class="caption">A model fine-tuned on the source task answers the target task\'s '
        "stream; the device answers at the split layer when confident, else offloads to the "
        "final layer. Point size: offloading cost o; marker: threshold α (when several); "
        "shaded: the paper's headline region (> 50% cost reduction at < 2 points drop).</p>\n\n"
        "---\n\n"
        "# SplitEE: regret over the stream\n\n"
        '<img src="/figures/splitee_regret.png" class="figure" '
        'alt="Cumulative regret of SplitEE and SplitEE-S against the best fixed split" />\n\n'
        '<p class="caption">Against the best fixed split layer in hindsight; mean and spread '
        "over stream orders and seeds.</p>\n\n"
        "---\n\n"
        f"# SplitEE: results\n\n{body}\n"
    )


def write_deck_slides(table_path, out_path) -> None:
    table = None if not table_path else Path(table_path).read_text(encoding="utf-8")
    write_text(out_path, deck_markdown(table))
