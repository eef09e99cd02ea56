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
# # Token-level early exit in a decoder
#
# The decoder stage (docs/decoder.md): SmolLM2-135M-Instruct with exits trained while the
# backbone stays frozen; self-speculative decoding and CALM-style exits against plain greedy
# decoding and transformers' `assistant_early_exit`, measured in interleaved rounds on the
# same prompts; the knob sweeps simulated from the stored per-token outputs. Executed by
# papermill; the next cell holds the parameters.

# %% tags=["parameters"]
summary = ""  # results/decoder/benchmark.tsv
check = ""  # results/decoder/check.tsv
speculative = ""  # results/decoder/sweep_speculative.tsv
calm = ""  # results/decoder/sweep_calm.tsv
perplexity = ""  # results/decoder/outputs/perplexity.tsv
training = ""  # results/decoder/exits/training.json
out_dir = "results/analysis"

# %%
from pathlib import Path

from early_exit.analysis import decoder, plots, results

out = Path(out_dir)
tables = decoder.load_tables(
    {
        "summary": summary,
        "check": check,
        "speculative": speculative,
        "calm": calm,
        "perplexity": perplexity,
        "training": training,
    }
)

# %% [markdown]
# Quality against measured speed, per method: agreement with the full model's greedy
# choice given the same prefix, and perplexity of the output under the full model.

# %%
plots.save_figure(decoder.tradeoff_figure(tables["summary"]), out / "decoder_tradeoff.png")

# %% [markdown]
# Acceptance against the draft depth E: the simulated sweep (lines, one per draft length)
# and the measured run (stars).

# %%
figure = decoder.acceptance_figure(tables["speculative"], tables["summary"])
plots.save_figure(figure, out / "decoder_acceptance.png")

# %%
text = "\n\n".join(
    [
        "# Decoder: measured benchmark",
        decoder.summary_markdown(tables["summary"]),
        decoder.perplexity_markdown(tables["perplexity"]),
        *decoder.findings(tables),
    ]
)
results.write_markdown(out / "decoder.md", text + "\n")
print(text)

# %% [markdown]
# The CALM sweep (simulated): mean exit layer, agreement and speed-ups per threshold.

# %%
tables["calm"].round(3)
