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
# # Which differences are larger than noise
#
# A family of tests fixed in advance (docs/statistics.md): each early-exit method, under
# its own criterion at the knob chosen on dev, against its own full model (the drop),
# against plain fine-tuning of its backbone (score and FLOPs) and against the static
# curve at the same FLOPs; an exact test at the chosen knobs for each, Holm over the
# family of a task. The tables come from rule operating_points (`significance.tsv`,
# `intervals.tsv`). Executed by papermill; the next cell holds the parameters.

# %% tags=["parameters"]
summary = "results/analysis/intervals.tsv"  # written by rule operating_points
significance = "results/analysis/significance.tsv"
points = "results/analysis/operating_points.tsv"  # with the guaranteed knob's ltt_* columns
methods = "{}"  # JSON: method -> {"recipe", "criterion", "static", ...}
bootstrap = "{}"  # JSON: analysis.bootstrap of the config
guarantee = "{}"  # JSON: analysis.guarantee of the config
max_drop = 0.01
out_dir = "results/analysis"

# %%
import json
from pathlib import Path

from early_exit.analysis import comparisons, intervals, plots, results, roles
from early_exit.analysis.bootstrap import Settings
from early_exit.exits.operating_points import load_operating_points
from early_exit.support.tables import read_table

out = Path(out_dir)
info, criteria, static = roles.method_roles(methods)
settings = Settings.from_config(json.loads(bootstrap))
summary = read_table(summary, "intervals table", "rule operating_points")
pairs = read_table(significance, "significance table", "rule operating_points", allow_empty=True)
coverage = intervals.coverage(int(summary.seeds.max()), settings)

# %%
fig = comparisons.significance_figure(pairs, 1 - settings.confidence)
plots.save_figure(fig, out / "significance.png")
fig

# %%
text = comparisons.differences_markdown(
    summary, pairs, criteria, "Drop, vs fine-tuning and vs static curve, tested", coverage
)
results.write_markdown(out / "significance.md", text)
print(text)

# %% [markdown]
# The knob of the point rule next to the knob chosen with a guarantee (Learn-then-Test).

# %%
text = comparisons.guarantee_markdown(
    load_operating_points(points),
    criteria,
    static,
    float(max_drop),
    json.loads(guarantee),
    "A knob chosen with a guarantee",
)
results.write_markdown(out / "guarantee.md", text)
print(text)

# %%
pairs[pairs.significant].sort_values(["task", "p_adjusted"])
