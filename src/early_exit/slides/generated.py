"""Slides generated from the config and the runs' metadata (imported by `slides/slides.md`).

Methods come from the config, so their slides cannot be written by hand: this
module writes `methods.md` (one slide per early-exit method, with its figure from
the exits notebook and its operating points) and `setup.md` (backbone, tasks, seeds,
hardware and time taken). Every number on them is read from the workflow's outputs;
the only hand-written text is what each recipe and criterion does.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from early_exit.analysis.measured import measured_column, measured_summary
from early_exit.analysis.results import interval_text, mean_std, select_criteria, summary_table
from early_exit.exits.policies import get_policy
from early_exit.recipes import get_recipe
from early_exit.slides.run_tables import Model, RunTables
from early_exit.support.atomic import write_text


def exits_figure_name(method: str) -> str:
    """The exits notebook's per-method figure (one per multi-exit method)."""
    return f"exits_{method}.png"


# --------------------------------------------------------------------------- formatting


def duration(seconds: float) -> str:
    """`42.0 s`, `4 min 09 s`, `2 h 03 min`."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _knob(policy: str, mean: float, std: float) -> str:
    fmt = get_policy(policy).format_knob
    text = fmt(mean)
    return text if pd.isna(std) or std == 0 else f"{text} ± {fmt(std)}"


# --------------------------------------------------------------------------- methods


def method_slide(
    method: str, info: dict, summary: pd.DataFrame, measured: pd.DataFrame | None = None
) -> str:
    """One slide: what the recipe and its criterion do, its operating points (with the
    measured speed-up of the same test examples, `measured_summary`, when given), its
    figure."""
    recipe = get_recipe(info["recipe"])
    name, paper, training = recipe.title, recipe.paper, recipe.summary
    policy = get_policy(info["criterion"])
    symbol, rule = policy.symbol, policy.rule
    same = re.sub(r"\W", "", name.lower()) == re.sub(r"\W", "", method.lower())
    title = name if same else f"{name} ({method})"  # COST-EFF is method costeff: no repeat
    lines = [
        f"# {title}",
        "",
        f'<p class="paper">{paper} · recipe <code>{info["recipe"]}</code></p>' if paper else "",
        "",
        f"- **Training:** {training}",
        f"- **Exit:** {rule}",
    ]
    rows = summary[summary.method == method]
    timed = measured_column(rows, measured)
    notes = []  # the presenter notes: the numbers unrounded
    for row, real in zip(rows.itertuples(), timed, strict=True):
        notes.append(
            f"{row.task} ({row.test_split}): knob {row.threshold_mean:.6g}, score "
            f"{row.test_score_mean:.6f} (full depth {row.test_score_full_mean:.6f}), "
            f"layer speed-up {row.test_speedup_mean:.4f}, over {row.seeds} seed(s)"
        )
        split = row.test_split
        where = row.task if split == "test" else f"{row.task} ({split})"
        full = mean_std(row.test_score_full_mean, row.test_score_full_std, 100)
        if hasattr(row, "test_score_lo"):  # with the bootstrap intervals (over seeds)
            early = interval_text(row.test_score_mean, row.test_score_lo, row.test_score_hi, 100)
            speed = interval_text(
                row.test_speedup_mean, row.test_speedup_lo, row.test_speedup_hi, 1.0, 2, "×"
            )
        else:
            early = mean_std(row.test_score_mean, row.test_score_std, 100)
            speed = f"{row.test_speedup_mean:.2f}×"
        lines.append(
            f"- **{where}:** ${symbol}$ = "
            f"{_knob(policy.name, row.threshold_mean, row.threshold_std)}"
            f" chosen on dev → {early} {row.metric} at {speed} on {split}"
            f" (full depth {full})" + ("" if real == "–" else f"; wall-clock {real}")
        )
    figure = exits_figure_name(method)
    lines += [
        "",
        f'<img src="/figures/{figure}" class="method-figure" '
        f'alt="Share of examples leaving at each exit for {method}" />',
    ]
    if notes:
        lines += ["", "<!--", *notes, "-->"]
    return "\n".join(lines) + "\n"


def methods_markdown(
    info: dict[str, dict],
    points: pd.DataFrame,
    intervals: pd.DataFrame | None = None,
    measured: pd.DataFrame | None = None,
) -> str:
    """One slide per multi-exit method (not the static baselines), in config order;
    scores and speed-ups with their intervals when `intervals` (intervals.tsv) is given,
    and the measured speed-up of the same examples with `measured` (the latency stage's
    measured_speedup.tsv)."""
    criteria = {m: i["criterion"] for m, i in info.items() if i["criterion"]}
    summary = select_criteria(summary_table(points, intervals), criteria, include_oracle=False)
    timed = None if measured is None else measured_summary(measured)
    slides = [
        method_slide(method, i, summary, timed)
        for method, i in info.items()
        if not i["static"] and i["criterion"]
    ]
    return "\n---\n\n".join(slides)


# --------------------------------------------------------------------------- setup


def _hardware(models: list[Model]) -> list[str]:
    records = {json.dumps(m.meta.get("hardware"), sort_keys=True) for m in models}
    lines = []
    for record in sorted(records):
        hw = json.loads(record)
        if hw is None:
            lines.append("- not recorded in these models' metadata")
            continue
        device = f"CUDA: {hw['cuda_device']}" if hw.get("cuda_device") else "no GPU"
        lines.append(f"- {hw['cpu']}, {hw['cores']} cores · {device}")
        lines.append(
            f"- torch {hw['torch']} · training on {hw['device']} with {hw['torch_threads']} "
            f"thread{'s' if hw['torch_threads'] != 1 else ''}"
        )
    return lines


def _training(config: dict, models: list[Model]) -> str:
    settings = {json.dumps(m.meta.get("training", {}), sort_keys=True) for m in models}
    train = config["training"]
    text = (
        f"{train['epochs']} epoch{'s' if train['epochs'] != 1 else ''} per stage · "
        f"batch {train['batch_size']} · learning rate {train['learning_rate']:g}"
    )
    text += " (some methods override)" if len(settings) > 1 else ""
    # what the steps ran in (bf16 falls back to fp32 without native support); older
    # models do not record it
    precisions = sorted({m.meta["precision"] for m in models if "precision" in m.meta})
    return text + (f" · {' and '.join(precisions)} training" if precisions else "")


def seed_list(seeds: list[int]) -> str:
    """Seeds as runs: `13–17` for five consecutive ones, `1, 5, 7–9` otherwise."""
    runs: list[list[int]] = []
    for seed in sorted(seeds):
        if runs and seed == runs[-1][-1] + 1:
            runs[-1].append(seed)
        else:
            runs.append([seed])
    return ", ".join(f"{r[0]}–{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs)


def setup_markdown(
    config: dict, info: dict[str, dict], manifests: dict[str, dict], models: list[Model]
) -> str:
    """The setup slide: backbone, tasks with split sizes, seeds, methods, hardware, time."""
    # an ElasticBERT model's backbone is its own pre-training output: name the starting one
    backbones = {m.meta["backbone"]["name"] for m in models if not m.meta["method"].get("pretrain")}
    others = sorted(backbones - {config["backbone"]["name"]})
    layers = max((m.backbone_config.get("num_hidden_layers", 0) for m in models), default=0)
    hidden = max((m.backbone_config.get("hidden_size", 0) for m in models), default=0)
    left = [
        f"**Backbone** `{config['backbone']['name']}` · {layers} layers · hidden {hidden} · "
        f"{config['backbone'].get('pooling', 'cls')} pooling",
        "",
        "**Tasks** (train / dev / test examples)",
        "",
    ]
    for task, manifest in manifests.items():
        sizes = " / ".join(f"{manifest['splits'][s]['size']:,}" for s in ("train", "dev", "test"))
        classes = len(manifest.get("label_names") or [])
        kind = f"{classes} classes" if classes else manifest.get("task_type", "regression")
        left.append(
            f"- {task}: {sizes} · {kind} · ≤ {manifest['max_length']} tokens · {manifest['metric']}"
        )
    seeds = config["seeds"]
    left += [
        "",
        "**Scores** ×100 on every slide, figure and table (accuracy 0.912 is 91.2; a "
        "difference of 0.01 is 1 point)",
        "",
        f"**Seeds** {len(seeds)} per method ({seed_list(seeds)}) · "
        f"data split seed {config['data_seed']}",
        "",
        "**Methods** "
        + ", ".join(f"{m} ({i['criterion']})" if i["criterion"] else m for m, i in info.items()),
    ]
    seconds = [(m.meta["progress"]["seconds"], m) for m in models]
    total = sum(s for s, _ in seconds)
    longest, slowest = max(seconds, key=lambda x: x[0])
    right = [  # the training beside its hardware and time: the left column is the longer
        f"**Training** {_training(config, models)}",
        "",
        "**Hardware** (recorded by the training jobs)",
        "",
        *_hardware(models),
        "",
        "**Time taken**",
        "",
        f"- fine-tuning {len(models)} models: {duration(total)} in total",
        f"- longest: {slowest.method} on {slowest.task}, seed {slowest.seed}: {duration(longest)}",
        "- training loops only (from each model's metadata): data preparation, "
        "elastic pre-training, inference and this deck are not included",
    ]
    if others:
        left[0] += " (some methods: " + ", ".join(f"`{b}`" for b in others) + ")"
    return (
        "# Setup\n\n"
        '<div class="grid grid-cols-2 gap-8 setup">\n<div>\n\n'
        + "\n".join(left)
        + "\n\n</div>\n<div>\n\n"
        + "\n".join(right)
        + "\n\n</div>\n</div>\n"
    )


def write_slides(run: RunTables, setup_path: str | Path, methods_path: str | Path) -> None:
    """Write the setup slide to `setup_path` and the method slides to `methods_path`
    (atomically); the deck build copies them into its `generated/` folder."""
    write_text(setup_path, setup_markdown(run.config, run.info, run.manifests, run.models))
    write_text(methods_path, methods_markdown(run.info, run.points, run.intervals, run.measured))
