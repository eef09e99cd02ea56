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
# # Early exiting under load
#
# The serving stage: the HTTP server at the knob chosen on dev, offered open-loop Poisson
# arrivals at several rates, in three modes (full depth with dynamic batching, the
# engine's shrinking batch, the refilling scheduler). Executed by papermill; the next
# cell holds the parameters.

# %% tags=["parameters"]
tables = ""  # comma-separated serving tables
out_dir = "results/analysis"

# %%
from pathlib import Path

from early_exit.analysis import plots, results, serving

out = Path(out_dir)
table = serving.load_serving(tables.split(","))

# %%
plots.save_figure(serving.serving_figure(table), out / "serving.png")

# %%
text = serving.serving_markdown(table)
results.write_markdown(out / "serving.md", text)
print(text)
