"""The deck's figure slides, each with the exact numbers behind its figure in the notes.

A results slide that is only a figure cannot be read to the last digit from the back of a
room, so each one carries Slidev presenter notes (the slide's closing HTML comment) with the
numbers it draws, read from the table the same notebook wrote beside the figure. The
calibration slide also says in a sentence, computed from the reliability table, whether the
exits were under- or over-confident before scaling. The seeds slide exists only when the
config has several seeds (one seed has no spread to show); it goes to the backup section.

`FIGURE_SLIDES` names the files (`generated/<name>.md`) that `slides/slides.md` imports,
in the order the talk shows them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from early_exit.analysis.measured import measured_summary
from early_exit.analysis.results import select_criteria, summary_table
from early_exit.analysis.seeds import seed_points
from early_exit.analysis.serving import MODES, capacities, equal_load
from early_exit.analysis.spatial import cost_points, pareto_front
from early_exit.slides.run_tables import RunTables
from early_exit.support.atomic import write_text

SCALE = 100  # every score is shown x100 (said once, on the setup slide)
# the generated figure slides, in the talk's order (slides/slides.md imports each by name)
FIGURE_SLIDES = (
    "exit_scores_slide",
    "calibration_slide",
    "ece_slide",
    "tradeoff_slide",
    "tradeoff_flops_slide",
    "spatial_slide",
    "significance_slide",
    "latency_slide",
    "serving_slide",
    "backup",
)


def notes(lines: list[str]) -> str:
    """Slidev's presenter notes: an HTML comment closing the slide."""
    return "\n<!--\n" + "\n".join(lines) + "\n-->\n"


def figure_slide(title: str, figure: str, alt: str, caption: str = "", **kw) -> str:
    """A title, one figure at the slide's figure size and a caption; `text` (markdown) goes
    between the title and the figure, `short` leaves room for a long caption."""
    text = kw.get("text", "")
    css = "figure with-finding" if text else "figure short" if kw.get("short") else "figure"
    lines = [f"# {title}", ""]
    if text:
        lines += [f'<p class="finding">{text}</p>', ""]
    lines.append(f'<img src="/figures/{figure}" class="{css}" alt="{alt}" />')
    if caption:
        lines += ["", f'<p class="caption">{caption}</p>']
    return "\n".join(lines) + "\n"


def _x100(value: float, digits: int = 1) -> str:
    return f"{value * SCALE:.{digits}f}"


# --------------------------------------------------------------------------- per-exit


def exit_scores_slide(scores: pd.DataFrame) -> str:
    """Every exit on its own; notes: each exit's score x100 (mean over seeds)."""
    mean = scores.groupby(["task", "method", "exit_layer"]).score.mean()
    lines = ["score ×100 of each exit answering alone (test), layer: score"]
    for (task, method), group in mean.groupby(level=["task", "method"], sort=True):
        cells = ", ".join(f"{layer}: {_x100(v, 2)}" for (_, _, layer), v in group.items())
        lines.append(f"{task} {method}: {cells}")
    return figure_slide(
        "Every exit on its own",
        "exit_scores.png",
        "Score of each exit against its layer, per method",
        "Each exit answers every test example; black squares: static models truncated to k layers.",
    ) + notes(lines)


def _span(values: pd.Series) -> str:
    """`31–58` (x100, whole points), or one value when all round alike."""
    lo, hi = _x100(values.min(), 0), _x100(values.max(), 0)
    return lo if lo == hi else f"{lo}–{hi}"


def calibration_sentence(gaps: pd.DataFrame) -> str:
    """What the reliability diagrams show, in one sentence computed from `reliability.tsv`:
    whether the exits were under- or over-confident before scaling (confidence against
    accuracy, x100) and how close scaling brought them."""
    before = gaps[gaps.scaling == "before"]
    after = gaps[gaps.scaling == "after"]
    if before.empty:
        return "No classification exit was calibrated in this run."
    under = int((before.gap < 0).sum())
    n = len(before)
    if under == n:
        how = f"every exit shown was under-confident before scaling ({n} of {n})"
    elif under == 0:
        how = f"every exit shown was over-confident before scaling ({n} of {n})"
    else:
        how = f"{under} of {n} exits shown were under-confident before scaling"
    text = (
        f"Raw softmax: {how}, mean confidence {_span(before.confidence)} at accuracy "
        f"{_span(before.accuracy)} (×100)"
    )
    if not after.empty:
        worst = after.gap.abs().max()
        text += f"; after temperature scaling every gap is within {_x100(worst)} points"
    return text + "."


def calibration_slide(gaps: pd.DataFrame) -> str:
    """The reliability diagrams, the sentence on confidence, the numbers in the notes."""
    lines = ["mean confidence / accuracy ×100 (gap), before → after scaling"]
    wide = gaps.set_index(["task", "method", "exit_layer", "scaling"])
    for (task, method, layer), group in wide.groupby(level=[0, 1, 2], sort=True):
        cells = []
        for scaling in ("before", "after"):
            key = (task, method, layer, scaling)
            if key in group.index:
                r = group.loc[key]
                cells.append(f"{_x100(r.confidence)} / {_x100(r.accuracy)} ({_x100(r.gap, 1)})")
        lines.append(f"{task} {method} layer {layer}: " + " → ".join(cells))
    return figure_slide(
        "Calibration: temperature scaling per exit",
        "reliability.png",
        "Reliability diagrams before and after temperature scaling",
        "Per task: raw softmax, then after temperature scaling (fitted on dev); one line per exit; "
        "dotted: perfect calibration.",
        text=calibration_sentence(gaps),
        short=True,
    ) + notes(lines)


def ece_slide(ece: pd.DataFrame) -> str:
    """ECE of every exit before and after scaling; notes: the values x100."""
    if ece.empty:
        return "# Calibration of every exit\n\nNo exit of this run was calibrated.\n"
    mean = ece.groupby(["task", "method", "exit_layer", "scaling"]).ece.mean().unstack("scaling")
    lines = ["ECE ×100 per exit (test), before → after scaling"]
    for (task, method), group in mean.groupby(level=["task", "method"], sort=True):
        cells = ", ".join(
            f"{layer}: {_x100(r.before, 2)} → {_x100(r.after, 2)}"
            for (_, _, layer), r in group.iterrows()
        )
        lines.append(f"{task} {method}: {cells}")
    return figure_slide(
        "Calibration of every exit",
        "ece.png",
        "Expected calibration error per exit before and after scaling",
        "Expected calibration error ×100 (15 confidence bins); dashed: raw softmax, solid: "
        "after temperature scaling.",
    ) + notes(lines)


# --------------------------------------------------------------------------- trade-off


def operating_notes(summary: pd.DataFrame, flops: bool = False) -> list[str]:
    """The operating points chosen on dev as the trade-off figures mark them (stars)."""
    lines = [
        "operating points (knob chosen on dev, test): score ×100 [interval], "
        + ("GFLOPs per example" if flops else "layer speed-up")
    ]
    for r in summary.sort_values(["task", "method"]).itertuples():
        score = f"{_x100(r.test_score_mean, 2)}"
        if hasattr(r, "test_score_lo") and not pd.isna(r.test_score_lo):
            score += f" [{_x100(r.test_score_lo, 2)}, {_x100(r.test_score_hi, 2)}]"
        if flops:
            cost = f"{r.test_flops_mean / 1e9:.4f} GFLOPs"
        else:
            cost = f"{r.test_speedup_mean:.3f}×"
            if hasattr(r, "test_speedup_lo") and not pd.isna(r.test_speedup_lo):
                cost += f" [{r.test_speedup_lo:.3f}, {r.test_speedup_hi:.3f}]"
        where = r.task if r.test_split == "test" else f"{r.task} ({r.test_split})"
        lines.append(f"{where} {r.method} ({r.policy}): {score} at {cost}")
    return lines


def tradeoff_slides(
    points: pd.DataFrame, intervals: pd.DataFrame | None, criteria: dict[str, str]
) -> tuple[str, str]:
    """Score against speed-up and against FLOPs; notes: every operating point."""
    summary = select_criteria(summary_table(points, intervals), criteria, include_oracle=False)
    speed = figure_slide(
        "Benchmarking: score against speed-up",
        "tradeoff.png",
        "Task score against speed-up for every method",
        "Lines: each method under its own criterion; black squares: static k layers; crosses: "
        "oracle; stars: operating points chosen on dev, with their intervals.",
    ) + notes(operating_notes(summary))
    flops = figure_slide(
        "Benchmarking: score against FLOPs",
        "tradeoff_flops.png",
        "Task score against FLOPs per example for every method",
        "The static models' curve is the ELUE reference.",
    ) + notes(operating_notes(summary, flops=True))
    return speed, flops


def spatial_slide(sweeps: pd.DataFrame, info: dict[str, dict], split: str = "test") -> str:
    """Score against parameters and FLOPs; notes: each method's parameters and the Pareto
    front over FLOPs per task."""
    criteria = {m: i["criterion"] for m, i in info.items() if i.get("criterion")}
    static = [m for m, i in info.items() if i.get("static")]
    cost = cost_points(sweeps, split, criteria, static)
    lines = [f"parameters (millions) per method; Pareto front over GFLOPs ({split}, ×100)"]
    for task, here in cost.groupby("task", sort=True):
        params = here.groupby("method").num_parameters.first() / 1e6
        lines.append(f"{task} parameters: " + ", ".join(f"{m} {v:.2f}" for m, v in params.items()))
        front = pareto_front(here, "avg_flops")
        lines.append(
            f"{task} front: "
            + ", ".join(
                f"{r.method} {r.avg_flops / 1e9:.4f} GFLOPs {_x100(r.score, 2)}"
                for r in front.itertuples()
            )
        )
    return figure_slide(
        "Memory and time: score against parameters and FLOPs",
        "spatial.png",
        "Task score against parameter count and against FLOPs for every method and knob value",
        "Black: the Pareto front; grey dashes: without the slenderized (COST-EFF) model, which "
        "is narrower as well as exiting early.",
    ) + notes(lines)


def significance_slide(significance: pd.DataFrame) -> str:
    """Every difference of the family with its interval; notes: values, tests, Holm's p."""
    rows = significance[significance.quantity == "score"].sort_values(
        ["task", "test_split", "method", "comparison"]
    )
    lines = ["points ×100 [95% interval], test, p (Holm-adjusted over the task's family)"]
    lines += [
        f"{r.task} {r.method} {r.comparison}: {_x100(r.value, 2)} "
        f"[{_x100(r.value_lo, 2)}, {_x100(r.value_hi, 2)}], {r.test}, p = {r.p_adjusted:.4g}"
        + (" significant" if str(r.significant).strip().lower() == "true" else "")
        for r in rows.itertuples()
    ]
    return figure_slide(
        "Which differences are larger than noise",
        "significance.png",
        "Each early-exit method's drop, difference from fine-tuning and from the static "
        "curve per task, with intervals; significant ones filled",
        "At the operating points, points ×100, paired bootstrap intervals. Drop: own full "
        "model − early exit; vs fine-tuning, vs static curve (same FLOPs): early exit − it. "
        "Filled: significant by the exact test after Holm's correction over the task's family.",
        short=True,
    ) + notes(lines)


# --------------------------------------------------------------------------- real speed


def latency_slide(measured: pd.DataFrame | None) -> str:
    """Measured against layer speed-up; notes: the knob chosen on dev over every test
    example, per engine."""
    lines = ["knob chosen on dev, every test example: measured speed-up [interval] / layer"]
    if measured is not None and not measured.empty:
        summary = measured_summary(measured, engine=None)
        lines += [
            f"{r.engine} {r.task} {r.method} (batch {int(r.batch_size)}): "
            f"{r.measured_speedup:.3f}× [{r.speedup_lo:.3f}, {r.speedup_hi:.3f}] / "
            f"{r.layer_speedup:.3f}×"
            for r in summary.sort_values(["engine", "task", "method"]).itertuples()
        ]
    return figure_slide(
        "Measured against layer speed-up",
        "latency.png",
        "Measured wall-clock speed-up against layer speed-up for every method and knob",
        "Real early exiting, timed against full depth at the same batch size, on both "
        "engines: torch (top) and its ONNX export on ONNX Runtime (bottom). Dashed: the "
        "physical limit (time saved in proportion to layers skipped); rings: the knob chosen "
        "on dev.",
        short=True,
    ) + notes(lines)


def served_accuracy(serving: pd.DataFrame, chosen: pd.DataFrame | None) -> dict[str, float]:
    """The test score of each served run at its operating point (`chosen`: each method under
    its own criterion, the knob the server runs, chosen on dev), per method."""
    if chosen is None or chosen.empty:
        return {}
    runs = serving[["task", "method", "seed"]].drop_duplicates()
    served = chosen[chosen.test_split == "test"].merge(runs, on=["task", "method", "seed"])
    return served.groupby("method").test_score.mean().to_dict()


def serving_slide(
    serving: pd.DataFrame | None,
    points: pd.DataFrame | None = None,
    criteria: dict[str, str] | None = None,
) -> str:
    """Capacity and latency at equal load in one figure, with the served runs' accuracy;
    notes: capacity, the equal load and p50/p90 per method and mode."""
    if serving is None or serving.empty:
        return (
            "# Early exiting under load\n\nThis run serves no method (the config's serving "
            "task is not among its runs).\n"
        )
    caps = capacities(serving).set_index(["method", "mode"])
    chosen = None if points is None else select_criteria(points, criteria or {}, False)
    accuracy = served_accuracy(serving, chosen)
    lines = ["capacity (req/s, p90 within the SLO); at the equal load: p50, p90 (ms)"]
    if accuracy:
        lines.append(
            "accuracy ×100 of the served runs at their knob (test): "
            + ", ".join(f"{m} {_x100(v, 2)}" for m, v in sorted(accuracy.items()))
        )
    for r in equal_load(serving).sort_values(["method", "mode"]).itertuples():
        lines.append(
            f"{r.method} {MODES.get(r.mode, r.mode)}: capacity "
            f"{caps.loc[(r.method, r.mode), 'capacity']:.1f}; at {r.offered_rate:.1f} req/s "
            f"p50 {r.p50_ms:.1f} [{r.p50_low_ms:.1f}, {r.p50_high_ms:.1f}], p90 "
            f"{r.p90_ms:.1f}, {r.sent} requests, {r.rows_per_call:.2f} rows/call"
        )
    return figure_slide(
        "Early exiting under load",
        "serving.png",
        "capacity under the latency objective and latency at equal load, full depth, "
        "shrinking batch and refilling scheduler",
        "The HTTP server at the knob chosen on dev, offered the same open-loop Poisson "
        "arrivals in every mode. Left: the highest offered rate whose p90 stays within the "
        "SLO; right: p50 and p90 at one equal load (its rate in req/s over each method). Full "
        "depth with dynamic batching is what a user would deploy."
        + (
            " Accuracy ×100 at the served knob (test): "
            + ", ".join(f"{m} {_x100(v)}" for m, v in sorted(accuracy.items()))
            + "."
            if accuracy
            else ""
        ),
        short=True,
    ) + notes(lines)


# --------------------------------------------------------------------------- backup


def seeds_slide(points: pd.DataFrame, criteria: dict[str, str]) -> str:
    """Test score and speed-up per seed at each method's operating point; notes: each."""
    chosen = seed_points(points, criteria)  # scores x100 already
    lines = ["per seed: score ×100, layer speed-up (knob chosen on dev, test)"]
    for (task, method), group in chosen.groupby(["task", "method"], sort=True):
        cells = ", ".join(
            f"seed {r.seed}: {r.test_score:.2f}, {r.test_speedup:.3f}×"
            for r in group.sort_values("seed").itertuples()
        )
        lines.append(f"{task} {method}: {cells}")
    return figure_slide(
        "Backup: spread across seeds",
        "seeds.png",
        "Test score and speed-up per seed at each method's operating point",
    ) + notes(lines)


def several_seeds(config: dict) -> bool:
    """Whether the config trains several seeds (else no spread to show, no seeds slide)."""
    seeds = config["seeds"]
    return isinstance(seeds, list) and len(set(seeds)) > 1


def backup_markdown(config: dict, points: pd.DataFrame, criteria: dict[str, str]) -> str:
    """The backup section's divider, then the seeds slide when there are several seeds."""
    slides = [
        "# Backup\n\nThe slides behind the talk: each method on its own, the spread across "
        "seeds (with several), the tables behind the figures.\n"
    ]
    if several_seeds(config):
        slides.append(seeds_slide(points, criteria))
    return "\n---\n\n".join(slides)


def write_figure_slides(run: RunTables, paths: dict[str, str | Path]) -> None:
    """Write every slide of `FIGURE_SLIDES` to `paths[name]` (atomically), from the run's
    operating points and intervals, the notebooks' `exit_scores`, `ece` and `reliability`
    (confidence gaps), the `significance` table, the latency stage's `measured` speed-ups,
    the `serving` tables (None when the run serves nothing) and every run's `sweeps`."""
    config, info, points = run.config, run.info, run.points
    criteria = {m: i["criterion"] for m, i in info.items() if i.get("criterion")}
    speed, flops = tradeoff_slides(points, run.intervals, criteria)
    texts = {
        "exit_scores_slide": exit_scores_slide(run.exit_scores),
        "calibration_slide": calibration_slide(run.reliability),
        "ece_slide": ece_slide(run.ece),
        "tradeoff_slide": speed,
        "tradeoff_flops_slide": flops,
        "spatial_slide": spatial_slide(run.sweeps, info, config["analysis"]["split"]),
        "significance_slide": significance_slide(run.significance),
        "latency_slide": latency_slide(run.measured),
        "serving_slide": serving_slide(run.serving, points, criteria),
        "backup": backup_markdown(config, points, criteria),
    }
    for name in FIGURE_SLIDES:
        write_text(paths[name], texts[name])
