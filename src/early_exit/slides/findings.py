"""The talk's findings, limitations and conclusion, written from the run's own tables.

Every sentence here is computed: which early-exit methods beat the static curve at the
same FLOPs and whether that survives Holm's correction (`significance.tsv`), how far
each method's trade-off goes within the allowed drop (`operating_points.tsv` with
`intervals.tsv`), how much of the layer speed-up the engine turned into wall-clock time
(`measured_speedup.tsv`) and what the refilling scheduler gained under load (the serving
tables), so a rerun whose numbers change says something else. The limitations come from
the config, the prepared data and the models' metadata. Each slide stays a few bullets
(the deck build fails when anything runs off a page); the exact numbers behind each go
into the slide's presenter notes.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from early_exit.analysis.elue import curve_methods, reference_curve
from early_exit.analysis.measured import measured_summary
from early_exit.analysis.plots import curve_points
from early_exit.analysis.results import select_criteria, summary_table
from early_exit.analysis.serving import capacities
from early_exit.recipes import get_recipe
from early_exit.slides.run_tables import RunTables
from early_exit.support.atomic import write_text

CURVE = "vs static curve"
# the files `write_findings` writes (the deck imports each as `generated/<name>.md`)
SLIDES = ("findings", "speed_findings", "limitations", "conclusion")
# bullets per findings slide: six two-line bullets and the caption fit a page (the deck
# build's browser check); more tasks continue on the next slide
MAX_BULLETS = 6
# tasks named one by one on the limitations slide; more are summarised as ranges
MAX_TASKS_NAMED = 4


def method_name(method: str, info: dict[str, dict]) -> str:
    """The paper's name of a method (`DeeBERT`), or the config's name when the method is
    not named after its recipe (two runs of one recipe)."""
    recipe = info.get(method, {}).get("recipe")
    if recipe is None:
        return method
    title = get_recipe(recipe).title
    same = re.sub(r"\W", "", title.lower()) == re.sub(r"\W", "", method.lower())
    return title if same else method


def _points(value: float) -> str:
    """A score difference in points (x100), signed: `+4.4`, `−0.3`."""
    text = f"{value * 100:+.1f}"
    return text.replace("-", "−")


def _interval(row) -> str:
    return f"{_points(row.value)} [{_points(row.value_lo)}, {_points(row.value_hi)}]"


def _notes(lines: list[str]) -> str:
    """Slidev's presenter notes: an HTML comment closing the slide."""
    return "\n<!--\n" + "\n".join(lines) + "\n-->\n"


def _significant(value) -> bool:
    """The table's `significant` column (bool, or its text when read back)."""
    return str(value).strip().lower() == "true"


def _where(task: str, split: str) -> str:
    return task if split == "test" else f"{task} ({split})"


# --------------------------------------------------------------------------- pieces


def curve_findings(significance: pd.DataFrame, info: dict[str, dict]):
    """Per task: one sentence on the early-exit methods against the static curve at the
    same FLOPs (interval above 0; significant after Holm or not, as `significance.tsv`'s
    `significant` column says at the run's level), and notes."""
    rows = significance[
        (significance.comparison == CURVE) & (significance.quantity == "score")
    ].sort_values(["task", "test_split", "value"], ascending=[True, True, False])
    bullets, notes = [], []
    for (task, split), group in rows.groupby(["task", "test_split"], sort=True):
        above = group[group.value_lo > 0]
        below = group[group.value_hi < 0]
        parts = []
        for row in above.itertuples():
            sig = "significant" if _significant(row.significant) else "not significant"
            parts.append(
                f"{method_name(row.method, info)} {_interval(row)} ({sig} after Holm, "
                f"p = {row.p_adjusted:.3f})"
            )
        rest = group.drop(index=above.index).drop(index=below.index)
        text = f"**{_where(task, split)}:** "
        if parts:
            text += "above the static curve at the same FLOPs: " + "; ".join(parts)
        else:
            text += "no method above the static curve at the same FLOPs"
        if not below.empty:
            names = ", ".join(method_name(m, info) for m in below.method)
            text += f"; below it: {names}"
        if not rest.empty:
            lo, hi = rest.value.min(), rest.value.max()
            span = _points(lo) if lo == hi else f"{_points(lo)} to {_points(hi)}"
            text += f"; {len(rest)} of {len(group)} within their interval of 0 ({span})"
        bullets.append(text)
        significant = int(group.significant.map(_significant).sum())
        notes.append(f"{task} ({split}): {significant} of {len(group)} significant after Holm.")
        notes += [
            f"  {r.method} ({r.policy}): {_interval(r)}, {r.test}, p = {r.p_value:.4g}, "
            f"Holm p = {r.p_adjusted:.4g}"
            for r in group.itertuples()
        ]
    return bullets, notes


def tradeoff_findings(
    points: pd.DataFrame,
    info: dict[str, dict],
    max_drop: float,
    intervals: pd.DataFrame | None = None,
):
    """Per task: how far the methods go (the speed-up of the knob chosen on dev within
    `max_drop` of the full model), slowest and fastest method, and the drop on test."""
    criteria = {m: i["criterion"] for m, i in info.items() if i.get("criterion")}
    summary = select_criteria(summary_table(points, intervals), criteria, include_oracle=False)
    dynamic = [m for m, i in info.items() if not i.get("static") and i.get("criterion")]
    summary = summary[summary.method.isin(dynamic)]
    bullets, notes = [], []
    for (task, split), group in summary.groupby(["task", "test_split"], sort=True):
        group = group.sort_values("test_speedup_mean")
        slow, fast = group.iloc[0], group.iloc[-1]
        worst = group.loc[group.test_drop_mean.idxmax()]
        bullets.append(
            f"**{_where(task, split)}:** within {max_drop * 100:g} point"
            f"{'s' if max_drop * 100 != 1 else ''} on dev, the trade-off ends between "
            f"{slow.test_speedup_mean:.2f}× ({method_name(slow.method, info)}) and "
            f"{fast.test_speedup_mean:.2f}× ({method_name(fast.method, info)}); "
            f"largest drop on test {worst.test_drop_mean * 100:.1f} points "
            f"({method_name(worst.method, info)})"
        )
        notes += [
            f"{task} ({split}) {r.method} ({r.policy}): speed-up {r.test_speedup_mean:.3f}×, "
            f"score {r.test_score_mean * 100:.1f}, full {r.test_score_full_mean * 100:.1f}, "
            f"drop {r.test_drop_mean * 100:.1f}"
            for r in group.itertuples()
        ]
    return bullets, notes, summary


def crossover_findings(sweeps: pd.DataFrame, info: dict[str, dict], split: str = "test"):
    """Per task: the layer speed-up beyond which the static curve of each method's
    reference backbone scores higher at the same FLOPs (point estimates over the sweep,
    seeds averaged; only within the static models' FLOPs, where the curve is measured)."""
    points = curve_points(sweeps, split)
    members = curve_methods(info)
    criteria = {m: i["criterion"] for m, i in info.items() if i.get("criterion")}
    dynamic = [m for m, i in info.items() if not i.get("static") and i.get("criterion")]
    bullets, notes = [], []
    for task, here in points.groupby("task", sort=True):
        beyond, never = {}, []
        for method in dynamic:
            curve = here[here.method.isin(members.get(info[method].get("reference"), []))]
            own = here[(here.method == method) & (here.policy == criteria[method])]
            if curve.method.nunique() < 2 or own.empty:
                continue
            xp, fp = reference_curve(curve)
            own = own[(own.avg_flops >= xp.min()) & (own.avg_flops <= xp.max())]
            own = own.sort_values("speedup")
            below = (own.score < np.interp(own.avg_flops, xp, fp)).to_numpy()
            # from the first knob after which every faster one stays below the curve
            stays = np.flip(np.logical_and.accumulate(np.flip(below)))
            if not stays.any():
                never.append(method)
                continue
            beyond[method] = float(own.speedup.to_numpy()[stays.argmax()])
            notes.append(f"{task} {method}: below the static curve from {beyond[method]:.2f}×")
        if not beyond:
            continue
        first, last = min(beyond, key=beyond.get), max(beyond, key=beyond.get)
        span = f"{beyond[first]:.1f}× ({method_name(first, info)})"
        if last != first:
            span += f" to {beyond[last]:.1f}× ({method_name(last, info)})"
        text = f"**{task}:** the static curve scores higher at the same FLOPs beyond {span}"
        if never:
            text += f"; never for {', '.join(method_name(m, info) for m in never)}"
        bullets.append(text + " (point estimates)")
    return bullets, notes


def measured_findings(measured: pd.DataFrame | None, info: dict[str, dict]):
    """The wall-clock speed-up against the layer speed-up of the same examples, per
    engine: the median share and its range over runs."""
    if measured is None or measured.empty:
        return [], []
    summary = measured_summary(measured, engine=None)
    bullets, notes = [], []
    for engine, group in summary.groupby("engine", sort=True):
        ratio = group.measured_speedup / group.layer_speedup
        best = group.loc[ratio.idxmax()]
        batch = "/".join(str(int(b)) for b in sorted(set(group.batch_size)))
        bullets.append(
            f"**{engine}** (batch {batch}, whole test split): the measured speed-up was "
            f"{np.median(ratio) * 100:.0f}% of the layer speed-up (median; "
            f"{ratio.min() * 100:.0f}–{ratio.max() * 100:.0f}%), at most "
            f"{best.measured_speedup:.2f}× ({method_name(best.method, info)}, {best.task})"
        )
        notes += [
            f"{engine} {r.task} {r.method}: measured {r.measured_speedup:.2f}× "
            f"[{r.speedup_lo:.2f}, {r.speedup_hi:.2f}], layer {r.layer_speedup:.2f}×"
            for r in group.itertuples()
        ]
    return bullets, notes


def serving_findings(serving: pd.DataFrame | None, info: dict[str, dict]):
    """Capacity within the SLO of the refilling scheduler (and the shrinking batch)
    against full depth with dynamic batching, per method."""
    if serving is None or serving.empty:
        return [], []
    caps = capacities(serving).pivot(index="method", columns="mode", values="capacity")
    if "full" not in caps:
        return [], []
    bullets, notes = [], []
    labels = {"refill": "the refilling scheduler", "shrink": "the shrinking batch"}
    for mode, label in labels.items():
        if mode not in caps:
            continue
        gained = caps[caps[mode] > caps["full"]]
        lost = caps[caps[mode] < caps["full"]]
        text = (
            f"**Under load**, {label} served more requests/s within the latency objective "
            f"than full depth for {len(gained)} of {len(caps)} methods"
        )
        if not lost.empty:
            text += f" (fewer: {', '.join(method_name(m, info) for m in lost.index)})"
        bullets.append(text)
    notes += [
        f"capacity {m} (req/s): "
        + ", ".join(f"{mode} {caps.loc[m, mode]:.1f}" for mode in caps.columns)
        for m in caps.index
    ]
    return bullets, notes


# --------------------------------------------------------------------------- slides


def findings_markdown(
    info: dict[str, dict],
    points: pd.DataFrame,
    significance: pd.DataFrame,
    max_drop: float,
    intervals: pd.DataFrame | None = None,
    measured: pd.DataFrame | None = None,
    serving: pd.DataFrame | None = None,
    sweeps: pd.DataFrame | None = None,
) -> str:
    """Two slides: what the scores say (against the static curve, where the trade-off
    ends) and what real speed says (engine, serving); numbers in the notes."""
    curve, curve_notes = curve_findings(significance, info)
    trade, trade_notes, _ = tradeoff_findings(points, info, max_drop, intervals)
    if sweeps is not None:
        cross, cross_notes = crossover_findings(sweeps, info)
        trade, trade_notes = trade + cross, trade_notes + cross_notes
    caption = (
        '<p class="caption">Points ×100, test split, knob chosen on dev; [95% paired '
        "bootstrap interval]; significance: exact tests, Holm-adjusted over each task's family."
        "</p>\n"
    )
    bullets = curve + trade
    chunks = [bullets[i : i + MAX_BULLETS] for i in range(0, len(bullets), MAX_BULLETS)]
    pages = []
    for number, chunk in enumerate(chunks or [[]], start=1):
        part = f" ({number}/{len(chunks)})" if len(chunks) > 1 else ""
        pages.append(
            f"# Findings: accuracy at the same cost{part}\n\n"
            + "\n".join(f"- {b}" for b in chunk)
            + "\n\n"
            + caption
            + (_notes(curve_notes + trade_notes) if number == 1 else "")
        )
    accuracy = "\n---\n\n".join(pages)
    speed = speed_findings_markdown(info, measured, serving)
    return accuracy if speed is None else accuracy + "\n---\n\n" + speed


def speed_findings_markdown(
    info: dict[str, dict],
    measured: pd.DataFrame | None = None,
    serving: pd.DataFrame | None = None,
) -> str | None:
    """The real-speed findings slide (engine, then serving), numbers in the notes; None
    when the run timed and served nothing."""
    real, real_notes = measured_findings(measured, info)
    load, load_notes = serving_findings(serving, info)
    if not real and not load:
        return None
    return (
        "# Findings: real speed\n\n"
        + "\n".join(f"- {b}" for b in real + load)
        + "\n"
        + _notes(real_notes + load_notes)
    )


def limitations_markdown(
    config: dict,
    manifests: dict[str, dict],
    backbone: dict,
    hardware: list[dict],
    served: bool = False,
) -> str:
    """What the run cannot say, from its config: tasks and input lengths, seeds,
    backbone size, device."""
    tasks = ", ".join(
        f"{task} (≤ {m['max_length']} tokens, {m['splits']['test']['size']:,} test examples)"
        for task, m in manifests.items()
    )
    if len(manifests) > MAX_TASKS_NAMED:
        lengths = sorted(m["max_length"] for m in manifests.values())
        sizes = sorted(m["splits"]["test"]["size"] for m in manifests.values())
        tasks = (
            f"≤ {lengths[0]}–{lengths[-1]} tokens, {sizes[0]:,}–{sizes[-1]:,} test examples each"
        )
    seeds = config["seeds"]
    seed_text = (
        f"**One seed** ({seeds[0]}): the intervals cover test sampling, not retraining"
        if len(seeds) == 1
        else f"**{len(seeds)} seeds** ({', '.join(map(str, seeds))}): few for a spread"
    )
    layers, hidden = backbone.get("num_hidden_layers"), backbone.get("hidden_size")
    size = f", {layers} layers, hidden {hidden}" if layers and hidden else ""
    # the papers' backbones are 12-layer BERT-base (and larger)
    small = ": smaller than the papers' 12-layer BERT-base" if layers and layers < 12 else ""
    devices = sorted({h["device"] for h in hardware if h})
    cuda = sorted({h["cuda_device"] for h in hardware if h and h.get("cuda_device")})
    cores = sorted({h["cores"] for h in hardware if h})
    device = " and ".join(devices) or config.get("device", "unrecorded")
    device += f" ({', '.join(cuda)})" if cuda else ""
    device += f", {'/'.join(map(str, cores))} cores" if cores else ""
    lines = [
        "# Limitations",
        "",
        f"- **{len(manifests)} task{'s' if len(manifests) != 1 else ''}**: {tasks}",
        f"- {seed_text}",
        f"- **Backbone** `{config['backbone']['name']}`{size}{small}",
        f"- **Device** {device}: timings from this machine only, noisy when it is shared",
    ]
    if served:
        lines.append("- **Serving**: one task, the first seed, short runs per offered rate")
    return "\n".join(lines) + "\n"


def decoder_conclusion(summary: pd.DataFrame | None) -> str | None:
    """One bullet from the decoder stage's benchmark (`results/decoder/benchmark.tsv`):
    exact self-speculation and the peer against greedy, CALM's speed and its agreement."""
    if summary is None or summary.empty:
        return None

    def fastest(kind: str):
        rows = summary[summary.kind == kind]
        return None if rows.empty else rows.loc[rows.speed_vs_greedy.idxmax()]

    def speed(row) -> str:
        return (
            f"{row.speed_vs_greedy:.2f}× [{row.speed_vs_greedy_lo:.2f}, "
            f"{row.speed_vs_greedy_hi:.2f}]"
        )

    parts = []
    if (spec := fastest("speculative")) is not None:
        peer = fastest("peer")
        versus = f" (transformers' own: {speed(peer)})" if peer is not None else ""
        parts.append(f"self-speculation, identical output, ran at {speed(spec)} of greedy{versus}")
    if (calm := fastest("calm")) is not None:
        parts.append(
            f"CALM-style exits at {speed(calm)}, "
            f"{calm.agreement * 100:.0f}% of tokens the full model's"
        )
    if not parts:
        return None
    prompts = int(summary.prompts.max())
    return f"- In a decoder ({prompts} prompts, batch 1): " + "; ".join(parts)


def conclusion_markdown(
    info: dict[str, dict],
    points: pd.DataFrame,
    significance: pd.DataFrame,
    max_drop: float,
    intervals: pd.DataFrame | None = None,
    measured: pd.DataFrame | None = None,
    decoder: pd.DataFrame | None = None,
) -> str:
    """Three bullets: how far early exiting went, whether it beat a truncated model,
    whether the saving was real; a fourth on the decoder when the stage ran."""
    _, _, summary = tradeoff_findings(points, info, max_drop, intervals)
    lines = ["# Conclusion", ""]
    if not summary.empty:
        lines.append(
            f"- Early exiting skipped layers for {summary.test_speedup_mean.min():.2f}–"
            f"{summary.test_speedup_mean.max():.2f}× within {max_drop * 100:g} point"
            f"{'s' if max_drop * 100 != 1 else ''} of the full model (chosen on dev)"
        )
    curve = significance[(significance.comparison == CURVE) & (significance.quantity == "score")]
    above = curve[curve.value_lo > 0]
    significant = curve[curve.significant.map(_significant) & (curve.value > 0)]
    if significant.empty:
        beat = "no method beat a static truncated model at the same FLOPs significantly" + (
            f" ({', '.join(sorted({method_name(m, info) for m in above.method}))}: "
            "interval above 0, not after Holm)"
            if not above.empty
            else ""
        )
        lines.append(f"- At equal cost, {beat}: the truncated model is the baseline to beat")
    else:
        names = ", ".join(sorted({method_name(m, info) for m in significant.method}))
        lines.append(
            f"- At equal cost, {names} beat a static truncated model significantly "
            f"(after Holm); the other methods did not"
        )
    if measured is not None and not measured.empty:
        timed = measured_summary(measured, engine=None)
        ratio = np.median(timed.measured_speedup / timed.layer_speedup)
        lines.append(
            f"- Wall-clock time kept {ratio * 100:.0f}% of the layer speed-up (median over "
            "runs and engines): layers skipped are mostly time saved"
            if ratio >= 0.75
            else f"- Wall-clock time kept only {ratio * 100:.0f}% of the layer speed-up "
            "(median): count time, not layers"
        )
    if (line := decoder_conclusion(decoder)) is not None:
        lines.append(line)
    return "\n".join(lines) + "\n"


def write_findings(run: RunTables, paths: dict[str, str | Path]) -> None:
    """Write `paths[name]` for each of `SLIDES` (atomically): the accuracy findings, the
    real-speed findings (after the engine and serving slides), the limitations and the
    conclusion; the deck build copies them into its `generated/` folder."""
    info, points, significance = run.info, run.points, run.significance
    max_drop = run.config["analysis"]["max_drop"]
    # the backbone of the configured name (an ElasticBERT run's own pre-training aside)
    backbone = next((m.backbone_config for m in run.models if m.backbone_config), {})
    hardware = [m.meta.get("hardware") for m in run.models]
    speed = speed_findings_markdown(info, run.measured, run.serving)
    texts = {
        # the accuracy findings close the results; the real-speed ones follow its slides
        "findings": findings_markdown(
            info, points, significance, max_drop, run.intervals, sweeps=run.sweeps
        ),
        "speed_findings": speed or "# Findings: real speed\n\nThis run timed nothing.\n",
        "limitations": limitations_markdown(
            run.config, run.manifests, backbone, hardware, served=run.serving is not None
        ),
        "conclusion": conclusion_markdown(
            info, points, significance, max_drop, run.intervals, run.measured, run.decoder
        ),
    }
    for name in SLIDES:
        write_text(paths[name], texts[name])
