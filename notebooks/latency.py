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
# # Measured vs. layer speed-up
#
# The early-exit engines timed for real (the latency stage): the run on torch and its
# ONNX export on ONNX Runtime, at the knob chosen on dev, two other knob values and full
# depth, at each batch size, in interleaved rounds (one row of panels per engine), on the
# first test examples; the table's first slide per task: the knob chosen on dev over every
# test example, the results tables' examples. Points
# on the diagonal turn every layer skipped into time saved; bars span the measured
# speed-up's min to max over rounds. Executed by papermill; the next cell holds the
# parameters.

# %% tags=["parameters"]
tables = ""  # comma-separated latency tables of every early-exit run
measured = ""  # the knob chosen on dev over every test example (measured_speedup.tsv)
methods = "{}"  # JSON: method -> {"recipe", "criterion", "static"}
out_dir = "results/analysis"

# %%
from pathlib import Path

from early_exit.analysis import latency, plots, results, roles
from early_exit.analysis.measured import load_measured

out = Path(out_dir)
info, criteria, static = roles.method_roles(methods)
palette = plots.method_palette([m for m in info if m not in static], info)
markers = plots.method_markers([m for m in info if m not in static], info)
table = latency.load_latency(tables.split(","))

# %%
plots.save_figure(latency.speedup_figure(table, palette, markers), out / "latency.png")

# %%
# runs of one architecture whose full-depth times disagree (the stage's flag), if any
print(latency.disagreement_note(table) or "full depth agrees across runs of one architecture")

# %%
whole = load_measured(measured) if measured else None
text = latency.latency_markdown(table, "Measured speed-up", whole)
results.write_markdown(out / "latency.md", text)
print(text)
