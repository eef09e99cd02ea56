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
# # Calibration of every exit
#
# Sledgehammer divides each exit's logits by a temperature fitted on dev before reading
# its confidence. Reliability diagrams (test split) before and after that scaling for the
# methods whose criterion uses it, and the expected calibration error (ECE) per exit for
# every multi-exit method. Executed by papermill; the next cell holds the parameters.

# %% tags=["parameters"]
runs = ""  # comma-separated run directories of the multi-exit methods
methods = "{}"  # JSON: method -> {"recipe", "criterion", "static"}
out_dir = "results/analysis"
split = "test"

# %%
from pathlib import Path

from early_exit.analysis import calibration, plots, results, roles
from early_exit.analysis.runs import load_runs

out = Path(out_dir)
info, _, static = roles.method_roles(methods)
palette = plots.method_palette([m for m in info if m not in static], info)
stored = load_runs(runs)

# %% [markdown]
# ## Reliability diagrams
#
# Per task: the raw softmax, then after temperature scaling; one line per exit; dotted:
# perfect calibration.
# Marker size grows with the number of examples in the confidence bin.

# %%
bins = calibration.reliability_frame(stored, split)
shown = bins[bins.method.isin(calibration.calibrated_methods(info))]
plots.save_figure(calibration.reliability_figure(shown, palette, split), out / "reliability.png")
gaps = calibration.confidence_gaps(shown)  # the deck's sentence on under-confidence
gaps.to_csv(out / "reliability.tsv", sep="\t", index=False)
gaps

# %% [markdown]
# ## ECE per exit, before and after temperature scaling

# %%
ece = calibration.ece_frame(stored, split)
ece.to_csv(out / "ece.tsv", sep="\t", index=False)
plots.save_figure(calibration.ece_figure(ece, palette, split), out / "ece.png")
text = calibration.ece_markdown(ece, "Calibration of every exit (ECE)", split)
results.write_markdown(out / "ece.md", text)
print(text)
