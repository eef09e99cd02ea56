"""The deck's decoder slides, computed from the decoder stage's tables (results/decoder/):
the methods side by side (ours and transformers' `assistant_early_exit`), what held up on
this machine and what did not, the simulated sweeps next to the measured runs; presenter
notes carry the exact numbers. Without a decoder stage, one slide says so."""

from __future__ import annotations

import pandas as pd

from early_exit.analysis.decoder import (
    findings,
    interval,
    load_tables,
    perplexity_markdown,
    summary_markdown,
)
from early_exit.support.atomic import write_text

OFF = (
    "# Token-level early exit in a decoder\n\n"
    "This run's config has no enabled `decoder:` section: the decoder stage did not run "
    "(docs/decoder.md).\n"
)


def _notes(frame: pd.DataFrame) -> str:
    return "<!--\n" + frame.to_csv(sep="\t", index=False, float_format="%.6g") + "-->"


def decoder_markdown(tables: dict | None) -> str:
    if tables is None:
        return OFF
    summary = tables["summary"]
    training = tables.get("training", {})
    said = findings(tables)
    measured = [line for line in said if not line.startswith("Simulation")]
    checked = [line for line in said if line.startswith("Simulation")]
    prompts = int(summary.prompts.max())
    greedy = summary[summary.kind == "greedy"].iloc[0]
    setup = (
        f"Exits at layers {', '.join(map(str, training.get('layers', [])))} of "
        f"{training.get('model', 'the model')} ({training.get('num_layers', '?')} layers, "
        f"backbone frozen), trained on {training.get('tokens', '?')} tokens of "
        + (
            f"self-distilled text ({training.get('stories')} train prompts + "
            f"{training.get('generated_tokens')} greedy tokens each)"
            if training.get("generated_tokens")
            else f"{training.get('stories')} train chats"
        )
        + f" in {training.get('train_seconds', '?')} s; plain greedy at "
        f"{interval(greedy.tokens_per_s, greedy.tokens_per_s_lo, greedy.tokens_per_s_hi, 1)} "
        f"tokens/s on this machine ({summary.threads.iloc[0] if 'threads' in summary else '?'} "
        "thread(s))."
    )
    slides = [
        "# Early exit in a decoder: what held up on a CPU\n\n"
        '<img src="/figures/decoder_tradeoff.png" class="figure short" '
        'alt="Agreement and perplexity against measured speed for every decoding method" />\n\n'
        + "\n".join(f"- {line}" for line in measured)
        + "\n\n"
        + _notes(summary),
        "# Decoder: our methods and the peer, measured\n\n"
        + setup
        + "\n\n"
        + summary_markdown(summary)
        + "\n\n"
        + _notes(summary[[c for c in summary.columns if not c.endswith(("_lo", "_hi"))]]),
        "# Self-speculative decoding: simulated and measured\n\n"
        '<img src="/figures/decoder_acceptance.png" class="figure short" '
        'alt="Acceptance and tokens per verification against the draft exit layer" />\n\n'
        + "\n".join(f"- {line}" for line in checked)
        + ("\n- " + perplexity_markdown(tables["perplexity"]) if "perplexity" in tables else "")
        + '\n\n<p class="caption">Lines: the sweep simulated from the stored per-token exit '
        f"outputs ({prompts} prompts); stars: the measured run at the knobs the sweep "
        "chose.</p>\n\n" + _notes(tables["speculative"]),
    ]
    return "\n\n---\n\n".join(slides) + "\n"


def write_decoder_slides(inputs: dict, out_path) -> None:
    """`inputs`: the stage's table paths (empty when the stage is off)."""
    tables = load_tables(inputs) if inputs.get("summary") else None
    write_text(out_path, decoder_markdown(tables))
