"""SplitEE results: summaries over stream orders and seeds, figures and tables.

The simulation itself is `early_exit.exits.splitee`; this module reads its tables
(`results/splitee/{source}/{target}/{method}/seed{seed}/splitee.tsv` and `regret.tsv`).
Accuracy drop and cost reduction are against final-layer inference of the same run
on the same stream (cost lambda L).
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


KEY_COLUMNS = (*PAIR, "seed", "offload_cost", "order", "policy")  # splitee.tsv and regret.tsv


def load_tables(paths: list[str]) -> pd.DataFrame:
    """SplitEE tables or their regret curves (papermill passes them comma-joined: empty
    names are skipped), naming any missing, empty, cut-short or garbled one."""
    paths = [p for p in paths if p]
    return read_tables(paths, "SplitEE table", "rule splitee", columns=KEY_COLUMNS)


def with_drop(table: pd.DataFrame) -> pd.DataFrame:
    """Add `accuracy_drop`: points below final-layer inference of the same run and order."""
    keys = [*PAIR, "seed", "offload_cost", "order"]
    final = table[table.policy == "final-layer"].set_index(keys).accuracy.rename("final_acc")
    out = table.join(final, on=keys)
    out["accuracy_drop"] = 100 * (out.final_acc - out.accuracy)
    return out.drop(columns="final_acc")


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over stream orders and seeds, per pair, o and policy."""
    data = with_drop(table)
    stats = data.groupby([*PAIR, "offload_cost", "policy"])[[*MEASURES, "accuracy_drop"]]
    mean, std = stats.mean(), stats.std(ddof=0)
    return mean.join(std.add_suffix("_std")).reset_index()


def write_summary(summ: pd.DataFrame, path) -> None:
    write_table(summ, path)


def regret_figure(regret: pd.DataFrame) -> matplotlib.figure.Figure:
    """Cumulative regret over the stream (mean and spread over orders and seeds), one
    panel per pair, one line style per bandit, colour by offloading cost."""
    data = regret.assign(pair=regret.source + " → " + regret.target)
    with sns.plotting_context(CONTEXT, font_scale=0.7):
        grid = sns.relplot(
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
        grid.set_titles("{col_name}")
    return grid.figure


def tradeoff_figure(summ: pd.DataFrame) -> matplotlib.figure.Figure:
    """Accuracy against cost reduction (vs final-layer inference), one point per policy
    and offloading cost, one panel per pair."""
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
            col="pair",
            kind="scatter",
            height=3.6,
            aspect=1.2,
            facet_kws={"sharey": False},
        )
        grid.set_axis_labels("cost reduction vs final layer (%)", "accuracy (%)")
        grid.set_titles("{col_name}")
    return grid.figure


def splitee_markdown(summ: pd.DataFrame, offload_cost: float | None = None) -> str:
    """One row per pair and shown policy at one offloading cost (default: the median one)."""
    costs = sorted(summ.offload_cost.unique())
    o = costs[len(costs) // 2] if offload_cost is None else offload_cost
    rows = []
    data = summ[(summ.offload_cost == o) & summ.policy.isin(SHOWN)]
    for (source, target, method), group in data.groupby(PAIR, sort=True):
        for policy in SHOWN:
            r = group[group.policy == policy]
            if r.empty:
                continue
            r = r.iloc[0]
            rows.append(
                {
                    "Stream": f"{source} → {target}",
                    "Method": method,
                    "Policy": policy,
                    "Accuracy": f"{100 * r.accuracy:.1f} ± {100 * r.accuracy_std:.1f}",
                    "Drop (points)": f"{r.accuracy_drop:.1f}",
                    "Cost reduction": f"{100 * r.cost_reduction:.0f}%",
                    "Offloaded": f"{100 * r.offload_rate:.0f}%",
                    "Split layer": f"{r.avg_split_layer:.1f}",
                }
            )
    table = pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)
    note = (
        f"Offloading cost o = {o:g}; mean ± std over stream orders and seeds. Drop and cost "
        "reduction are against final-layer inference (every layer on the device, cost λL). "
        "The paper's headline: > 50% cost reduction at < 2 points drop."
    )
    return f"# SplitEE\n\n{table}\n\n{note}\n"


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
        "final layer. Point size: offloading cost o.</p>\n\n"
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
