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
# Reads the threshold sweeps (computed from stored exit logits), plots the task
# metric against speed-up for every task and method, and writes the results
# table used by the deck. Executed by papermill from the workflow; the cell
# below holds the parameters it injects.

# %% tags=["parameters"]
sweeps = "results/bbc-news/joint/seed13/sweep.tsv"  # comma-separated sweep tables
figure = "results/analysis/tradeoff.png"
table = "results/analysis/results_table.md"
split = "test"
max_drop = 0.01

# %%
from early_exit import analysis, plots

data = analysis.load_sweeps(sweeps.split(","))
points = analysis.operating_points(data, max_drop)
summary = analysis.summary_table(points)
summary

# %% [markdown]
# Each line is one method's sweep over entropy thresholds (mean over seeds);
# stars mark the operating point chosen on dev and measured on test.

# %%
fig = plots.tradeoff_figure(data, split, points if split == "test" else None)
plots.save_figure(fig, figure)
fig

# %%
text = analysis.markdown_table(summary, max_drop, "Early exit at the operating point")
analysis.write_markdown(table, text)
print(text)
