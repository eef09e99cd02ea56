"""The deck's SplitEE slides, written from the SplitEE summary and the config's settings.

SplitEE comes after real speed, as an extension (the story of the deck): first its cost
model (what lambda and the offloading cost o are, what a split costs, what "cost
reduction" is measured against), then its trade-off figure, one table of every policy at
every threshold alpha at the offloading cost the figures show, and the regret. Every number
is read from `splitee_summary.tsv` (`early_exit.analysis.splitee_results.summary`) and the
config's `splitee:` section; the exact numbers behind each figure go into the slide's
presenter notes. A run without a `splitee:` section gets one slide saying so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from early_exit.analysis.splitee_results import (
    BANDITS,
    HEADLINE_DROP,
    HEADLINE_REDUCTION,
    OFFLOAD_ALL,
    PAIR,
    SCORE_SCALE,
    SHOWN,
    offloads_all,
    shown_cost,
)
from early_exit.support.atomic import write_text
from early_exit.support.tables import read_table

NO_SECTION = (
    "# SplitEE: online split computing\n\n"
    "This run has no `splitee:` section in its config: no stream was simulated.\n"
)


def _notes(lines: list[str]) -> str:
    """Slidev's presenter notes: an HTML comment closing the slide."""
    return "\n<!--\n" + "\n".join(lines) + "\n-->\n"


def _alphas(summ: pd.DataFrame) -> list:
    return sorted(summ.alpha.dropna().unique()) or [np.nan]


def _at(summ: pd.DataFrame, alpha) -> pd.DataFrame:
    return summ[summ.alpha.isna()] if pd.isna(alpha) else summ[np.isclose(summ.alpha, alpha)]


def _alpha_text(alpha) -> str:
    return "–" if pd.isna(alpha) else f"{alpha:g}"


def cost_model_markdown(settings: dict, summ: pd.DataFrame) -> str:
    """The cost model on one slide: lambda, o, alpha, what a split costs, what cost reduction
    and the paper's headline are measured against."""
    lam, depth = float(settings["lambda"]), int(settings.get("lambda_depth", 12))
    final = summ[summ.policy == "final-layer"]
    layers = sorted({int(round(v)) for v in final.avg_split_layer}) if len(final) else []
    here = (
        f", {' / '.join(f'{lam * depth / n:g}' for n in layers)} on this "
        f"{'/'.join(map(str, layers))}-layer model, so a full pass costs λL = {lam * depth:g}"
        if layers
        else ""
    )
    costs = ", ".join(f"{o:g}" for o in sorted(summ.offload_cost.unique()))
    alphas = ", ".join(_alpha_text(a) for a in _alphas(summ))
    pairs = ", ".join(
        f"{s} → {t}" for s, t in summ[["source", "target"]].drop_duplicates().to_numpy()
    )
    methods = ", ".join(sorted(summ.method.unique()))
    return (
        "# Extension: SplitEE, early exit inside split computing\n\n"
        f"- A model fine-tuned on one task ({methods}) answers another's stream: {pairs}\n"
        "- The device runs layers 1…ℓ (the **split layer**, learned online by a UCB bandit) "
        f"and answers if the exit's max softmax ≥ **α** ({alphas}), else **offloads** to "
        "the server's last layer\n"
        f"- **λ**: the device's cost per layer, {lam:g} on a {depth}-layer backbone (the "
        f"paper's){here}\n"
        f"- **o**: the cost of offloading one example (o = {costs})\n"
        "- An example costs λℓ on the device, λℓ + o offloaded; the bandit's reward is the "
        "confidence minus that cost\n"
        f"- **Cost reduction** = 1 − mean cost / λL. Headline: > {HEADLINE_REDUCTION * 100:.0f}% "
        f"at < {HEADLINE_DROP:g} points drop; offloading every example at layer 1 (saving "
        "1 − (λ + o) / λL with no early exit) is not counted\n"
    )


def tradeoff_slide(summ: pd.DataFrame, o: float) -> str:
    """The trade-off figure, with every point's numbers in the notes."""
    notes = [f"o = {o:g}; accuracy ×{SCORE_SCALE} ± std over orders and seeds"]
    here = summ[np.isclose(summ.offload_cost, o) & summ.policy.isin(SHOWN)]
    for r in here.sort_values([*PAIR, "alpha", "policy"]).itertuples():
        notes.append(
            f"{r.source} → {r.target} α {_alpha_text(r.alpha)} {r.policy}: "
            f"{SCORE_SCALE * r.accuracy:.2f} ± {SCORE_SCALE * r.accuracy_std:.2f}, drop "
            f"{r.accuracy_drop:.2f}, cost reduction {100 * r.cost_reduction:.1f}%, offloaded "
            f"{100 * r.offload_rate:.1f}%, split layer {r.avg_split_layer:.2f}"
        )
    return (
        "# SplitEE: accuracy against cost\n\n"
        '<img src="/figures/splitee_tradeoff.png" class="figure" '
        'alt="Accuracy against cost reduction for SplitEE, SplitEE-S and the baselines" />\n\n'
        f'<p class="caption">At o = {o:g}; marker: threshold α; shaded: the paper\'s headline '
        f"region (> {HEADLINE_REDUCTION * 100:.0f}% cost reduction at < {HEADLINE_DROP:g} "
        "points drop).</p>\n" + _notes(notes)
    )


def _cell(r) -> str:
    text = (
        f"{SCORE_SCALE * r.accuracy:.1f} · {100 * r.cost_reduction:.0f}% · "
        f"{100 * r.offload_rate:.0f}%"
    )
    return f"**{text}**" if r.headline else text


def table_markdown(summ: pd.DataFrame, o: float) -> str:
    """One table: a row per pair and policy, a column per alpha, each cell accuracy x100,
    cost reduction and share offloaded; bold where the headline is met."""
    here = summ[np.isclose(summ.offload_cost, o) & summ.policy.isin(SHOWN)]
    alphas = _alphas(here)
    rows = []
    for (source, target, _), group in here.groupby(PAIR, sort=True):
        for policy in SHOWN:
            row = {"Stream": f"{source} → {target}", "Policy": policy}
            for alpha in alphas:
                r = _at(group[group.policy == policy], alpha)
                row[f"α = {_alpha_text(alpha)}"] = "" if r.empty else _cell(r.iloc[0])
            if any(row[k] for k in row if k.startswith("α")):
                rows.append(row)
    return pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)


def headline_summary(summ: pd.DataFrame, o: float) -> list[str]:
    """Per pair at offloading cost `o`: which bandits meet the headline (at which alpha), and
    which policies reach the region only by offloading everything."""
    lines = []
    here = summ[np.isclose(summ.offload_cost, o)]
    for (source, target, _), group in here.groupby(PAIR, sort=True):
        met = group[group.headline & group.policy.isin(BANDITS)]
        named = ", ".join(
            f"{policy} (α {'/'.join(_alpha_text(a) for a in by.alpha)})"
            for policy, by in met.groupby("policy", sort=True)
        )
        inside = group[
            (group.cost_reduction > HEADLINE_REDUCTION)
            & (group.accuracy_drop < HEADLINE_DROP)
            & group.apply(offloads_all, axis=1)
        ]
        text = f"**{source} → {target}:** headline met by {named or 'no bandit'}"
        if not inside.empty:
            text += "; only by offloading everything: " + ", ".join(
                f"{policy} (α {'/'.join(_alpha_text(a) for a in sorted(by.alpha))})"
                for policy, by in inside.groupby("policy", sort=True)
            )
        lines.append(text)
    return lines


def results_slide(summ: pd.DataFrame, o: float) -> str:
    """The one results table at offloading cost `o`, the headline per pair under it, and the
    headline at every other o in the notes."""
    notes = [
        f"Headline (> {HEADLINE_REDUCTION * 100:.0f}% cost reduction, < {HEADLINE_DROP:g} points "
        f"drop, offloaded < {OFFLOAD_ALL * 100:.0f}%) per o:"
    ]
    for other in sorted(summ.offload_cost.unique()):
        notes += [
            f"o = {other:g}: " + line.replace("**", "") for line in headline_summary(summ, other)
        ]
    lines = "\n".join(f"- {line}" for line in headline_summary(summ, o))
    return (
        "# SplitEE: every policy and threshold\n\n"
        + table_markdown(summ, o)
        + f"\n\nEach cell: accuracy ×{SCORE_SCALE} · cost reduction · share offloaded, at o = "
        f"{o:g}; mean over stream orders and seeds; **bold**: the paper's headline met.\n\n"
        + lines
        + "\n"
        + _notes(notes)
    )


def regret_slide(summ: pd.DataFrame, o: float) -> str:
    """The regret figure; the bandits' final regret in the notes."""
    here = summ[np.isclose(summ.offload_cost, o) & summ.policy.isin(BANDITS)]
    notes = [
        f"{r.source} → {r.target} α {_alpha_text(r.alpha)} {r.policy}: final regret "
        f"{r.regret:.2f} ± {r.regret_std:.2f}"
        for r in here.sort_values([*PAIR, "alpha", "policy"]).itertuples()
    ]
    return (
        "# SplitEE: regret over the stream\n\n"
        '<img src="/figures/splitee_regret.png" class="figure" '
        'alt="Cumulative regret of SplitEE and SplitEE-S against the best fixed split" />\n\n'
        f'<p class="caption">Against the best fixed split layer in hindsight, at o = {o:g}; '
        "mean and spread over stream orders and seeds.</p>\n" + _notes(notes)
    )


def splitee_slides_markdown(settings: dict | None, summ: pd.DataFrame | None) -> str:
    """The deck's SplitEE slides, or one slide saying the run simulated none."""
    if settings is None or summ is None:
        return NO_SECTION
    summ = summ if "alpha" in summ else summ.assign(alpha=float("nan"))
    o = shown_cost(summ)
    slides = [
        cost_model_markdown(settings, summ),
        tradeoff_slide(summ, o),
        results_slide(summ, o),
        regret_slide(summ, o),
    ]
    return "\n---\n\n".join(slides)


def write_splitee_slides(settings: dict | None, summary_path, out_path) -> None:
    """Write the SplitEE slides (atomically) from `splitee_summary.tsv`, or the one-slide
    note when the config has no `splitee:` section."""
    summ = None
    if settings is not None and summary_path:
        summ = read_table(Path(summary_path), "SplitEE summary", "rule splitee_notebook")
        summ["headline"] = summ.headline.map(lambda v: str(v).strip().lower() == "true")
    write_text(out_path, splitee_slides_markdown(settings, summ))
