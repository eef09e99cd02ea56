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
# # Instance difficulty
#
# Sledgehammer's question: is an example the first exit is confident about an easy one?
# The first exit's calibrated confidence against two difficulty proxies, input length and
# agreement across exits (the share of earlier exits that give the last exit's answer),
# with Spearman's rank correlation per task and method. Executed by papermill; the next
# cell holds the parameters.

# %% tags=["parameters"]
runs = ""  # comma-separated run directories of the multi-exit methods
methods = "{}"  # JSON: method -> {"recipe", "criterion", "static"}
out_dir = "results/analysis"
split = "test"

# %%
from pathlib import Path

from early_exit.analysis import difficulty, plots, results, roles
from early_exit.analysis.runs import load_runs

out = Path(out_dir)
info, _, static = roles.method_roles(methods)
palette = plots.method_palette([m for m in info if m not in static], info)
frame = difficulty.difficulty_frame(load_runs(runs), split)

# %%
plots.save_figure(difficulty.difficulty_figure(frame, palette, split), out / "difficulty.png")

# %%
table = difficulty.spearman_table(frame)
table.to_csv(out / "difficulty.tsv", sep="\t", index=False)
text = difficulty.spearman_markdown(table, "Instance difficulty", split)
results.write_markdown(out / "difficulty.md", text)
print(text)
