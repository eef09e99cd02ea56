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
# # Where examples leave the network
#
# From the stored exit logits: the score of every exit on its own, and, for each
# multi-exit method under its own exit criterion, the share of test examples leaving at
# each layer (correct and incorrect) for a few knob values, including the one chosen on
# dev. Executed by papermill from the workflow; the next cell holds the parameters.

# %% tags=["parameters"]
runs = ""  # comma-separated run directories results/{task}/{method}/seed{seed}
points = "results/analysis/operating_points.tsv"  # written by rule operating_points
methods = "{}"  # JSON: method -> {"recipe", "criterion", "static"}
policies = "{}"  # JSON: the config's sweep.policies (the knob grids)
out_dir = "results/analysis"
split = "test"

# %%
import json
from pathlib import Path

from early_exit.analysis import elue, exits, plots, roles
from early_exit.analysis.runs import load_runs
from early_exit.exits import operating_points

out = Path(out_dir)
info, criteria, static = roles.method_roles(methods)
palette = plots.method_palette([m for m in info if m not in static], info)
stored = load_runs(runs)

# %% [markdown]
# ## Every exit on its own
#
# Lines: multi-exit methods (mean over seeds); black squares: static models truncated to
# k layers, each fine-tuned on its own.

# %%
scores = exits.exit_scores(stored, split)
scores.to_csv(out / "exit_scores.tsv", sep="\t", index=False)
fig = exits.exit_scores_figure(scores, static, palette, split, elue.used_curves(info))
plots.save_figure(fig, out / "exit_scores.png")

# %% [markdown]
# ## Exit layers under each method's own criterion
#
# Knob values spread over the sweep's grid plus the one chosen on dev (★); each panel's
# title gives the accuracy and speed-up it yields.

# %%
points = operating_points.load_operating_points(points)
dist = exits.exit_distributions(stored, criteria, json.loads(policies), points, split)
dynamic = [m for m in info if m not in static]
for method, fig in exits.exit_distribution_figures(dist, dynamic, palette, split).items():
    plots.save_figure(fig, out / f"exits_{method}.png")
exits.knob_summary(dist).query("chosen_by > 0")
