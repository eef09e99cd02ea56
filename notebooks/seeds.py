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
# # Spread across seeds
#
# Each method under its own criterion at the knob chosen on dev, seed by seed: test score
# and speed-up, with mean ± standard deviation. With a single seed the figure says so.
# Executed by papermill; the next cell holds the parameters.

# %% tags=["parameters"]
points = "results/analysis/operating_points.tsv"  # written by rule operating_points
methods = "{}"  # JSON: method -> {"recipe", "criterion", "static"}
out_dir = "results/analysis"

# %%
from pathlib import Path

from early_exit.analysis import plots, results, roles, seeds
from early_exit.exits import operating_points

out = Path(out_dir)
info, criteria, static = roles.method_roles(methods)
palette = plots.method_palette([m for m in info if m not in static], info)
points = operating_points.load_operating_points(points)
chosen = seeds.seed_points(points, criteria)

# %%
plots.save_figure(seeds.seeds_figure(chosen, palette, static), out / "seeds.png")

# %%
text = seeds.seeds_markdown(chosen, "Spread across seeds")
results.write_markdown(out / "seeds.md", text)
print(text)
