# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Speed/accuracy trade-off of early exiting
#
# Reads the threshold sweeps (computed from stored exit logits), plots each method's
# trade-off under its paper's exit criterion against the static baselines, and writes
# the results tables (operating points chosen on dev, reported on test) and the ELUE
# scores. Executed by papermill from the workflow; the next cell holds the parameters.

# %% tags=["parameters"]
sweeps = ""  # comma-separated sweep tables
points = "results/analysis/operating_points.tsv"  # written by rule operating_points
intervals = "results/analysis/intervals.tsv"  # bootstrap intervals over seeds (same rule)
elue_intervals = "results/analysis/elue_intervals.tsv"
measured = ""  # the latency stage's measured speed-ups over the whole test split (optional)
bootstrap = "{}"  # JSON: analysis.bootstrap of the config
methods = (
    "{}"  # JSON: method -> {"recipe", "criterion", "static", "backbone", "curve", "reference"}
)
out_dir = "results/analysis"
split = "test"
max_drop = 0.01

# %%
import json
from pathlib import Path

from early_exit.analysis import elue, plots, results, roles, spatial
from early_exit.analysis.bootstrap import Settings
from early_exit.analysis.intervals import coverage
from early_exit.analysis.measured import load_measured, measured_summary
from early_exit.exits import operating_points
from early_exit.support.tables import read_table

out = Path(out_dir)
info, criteria, static = roles.method_roles(methods)
data = operating_points.load_sweeps(sweeps.split(","))
points = operating_points.load_operating_points(points)
spread = read_table(intervals, "intervals table", "rule operating_points")
summary = results.summary_table(points, spread)
covers = coverage(int(summary.seeds.max()), Settings.from_config(json.loads(bootstrap)))
timed = measured_summary(load_measured(measured)) if measured else None

# %% [markdown]
# Each line is one method under its own criterion (mean over seeds per knob value);
# black squares: static models of the reference backbone truncated to k layers; black
# diamonds: other single-exit baselines (plain fine-tuning); crosses: oracle exits;
# stars: operating points chosen on dev, measured on test, with their intervals.

# %%
marks = summary if split == "test" else None
for x, name in (("speedup", "tradeoff.png"), ("avg_flops", "tradeoff_flops.png")):
    fig = plots.tradeoff_figure(
        data, split, criteria, static, x=x, points=marks, curves=elue.used_curves(info), info=info
    )
    plots.save_figure(fig, out / name)
fig

# %% [markdown]
# ## Memory and time: score against parameters and against FLOPs
#
# Every knob value of every method (its own criterion) and every single-exit model, at
# the model's real parameter count; black: the Pareto front, grey dashes: the front
# without the slenderized (COST-EFF) methods.

# %%
slenderized = [m for m, i in info.items() if i["trained_by"] == "slenderize"]
cost = spatial.cost_points(data, split, criteria, static)
fig = spatial.spatial_figure(cost, slenderized, split, info)
plots.save_figure(fig, out / "spatial.png")
cost.groupby(["task", "method"]).num_parameters.first().unstack(0) / 1e6

# %% [markdown]
# ## Results per task: every method at its operating point

# %%
slides = []
for task, rows in summary.groupby("task"):
    chosen = results.select_criteria(rows, criteria, include_oracle=False)
    text = results.results_markdown(chosen, max_drop, f"Results: {task}", covers, timed)
    results.write_markdown(out / f"results_{task}.md", text)
    slides.append(text)
    print(text)
# one slide per task for the deck (Slidev splits an imported file at `---`)
results.write_markdown(out / "results_table.md", "\n---\n\n".join(slides))
results.write_markdown(
    out / "policies.md",
    results.results_markdown(
        summary.assign(method=lambda t: t.task + " / " + t.method),
        max_drop,
        "Every method under every policy",
        covers,
    ),
)

# %% [markdown]
# ## ELUE score against the static curve
#
# Each method against the static curve of the backbone named under Curve; the ELUE
# average covers the six ELUE tasks only.

# %%
scores = elue.elue_table(data, info)
scores.to_csv(out / "elue.tsv", sep="\t", index=False)
ranges = read_table(elue_intervals, "ELUE intervals table", "rule operating_points")
scores = scores.merge(ranges, on=["task", "method", "policy"], how="left", validate="1:1")
chosen_scores = results.select_criteria(scores, criteria, include_oracle=False)
text = elue.elue_markdown(chosen_scores, "ELUE score", covers)
results.write_markdown(out / "elue.md", text)
print(text)
