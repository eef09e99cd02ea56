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
# # SplitEE: learning the split layer online
#
# A model trained on a source task answers a stream from a target task with the same
# labels. A device runs the layers up to the split layer and answers when confident,
# else offloads to the server's final layer; a UCB bandit picks the split layer without
# labels (SplitEE), or also learns from the shallower exits it computed (SplitEE-S).
# Executed by papermill; the next cell holds the parameters.

# %% tags=["parameters"]
tables = ""  # comma-separated splitee.tsv tables
regrets = ""  # comma-separated regret.tsv tables
out_dir = "results/analysis"

# %%
from pathlib import Path

from early_exit.analysis import plots, results
from early_exit.analysis import splitee_results as analysis

out = Path(out_dir)
table = analysis.load_tables(tables.split(","))
summary = analysis.summary(table)

# %%
plots.save_figure(
    analysis.regret_figure(analysis.load_tables(regrets.split(","))), out / "splitee_regret.png"
)
plots.save_figure(analysis.tradeoff_figure(summary), out / "splitee_tradeoff.png")

# %%
text = analysis.splitee_markdown(summary)
results.write_markdown(out / "splitee.md", text)
analysis.write_summary(summary, out / "splitee_summary.tsv")
print(text)
