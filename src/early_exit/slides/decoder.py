"""The deck's decoder slides, computed from the decoder stage's tables (results/decoder/):
the methods side by side (ours and transformers' `assistant_early_exit`), what held up on
this machine and what did not, the simulated sweeps next to the measured runs; presenter
notes carry the exact numbers. Without a decoder stage, one slide says so."""

from __future__ import annotations

import pandas as pd

from early_exit.analysis.decoder import findings, interval, load_tables, perplexity_markdown
from early_exit.support.atomic import write_text

OFF = (
    "# Token-level early exit in a decoder\n\n"
    "This run's config has no enabled `decoder:` section: the decoder stage did not run "
    "(docs/decoder.md).\n"
)


def _notes(frame: pd.DataFrame) -> str:
    return "<!--\n" + frame.to_csv(sep="\t", index=False, float_format="%.6g") + "-->"


SPEED = [  # (header, column, digits, unit): the slide's tables stay within the page
    ("tokens/s", "tokens_per_s", 1, ""),
    ("speed vs greedy", "speed_vs_greedy", 2, "×"),
    ("simulated (cost model)", "simulated_model_speedup", 2, "×"),
]
QUALITY = [
    ("agreement", "agreement", 2, ""),
    ("perplexity", "perplexity", 1, ""),
    ("acceptance", "acceptance", 3, ""),
    ("mean exit layer", "mean_exit_layer", 1, ""),
]


def _cell(row, column: str, digits: int, unit: str) -> str:
    if column not in row or pd.isna(row[column]):
        return ""
    return interval(row[column], row.get(f"{column}_lo"), row.get(f"{column}_hi"), digits, unit)


def slide_table(summary: pd.DataFrame, columns, same: bool = False) -> str:
    headers = ["method"] + [c[0] for c in columns] + (["output = greedy"] if same else [])
    lines = ["| " + " | ".join(headers) + " |", "|---" + "|---:" * (len(headers) - 1) + "|"]
    for _, row in summary.iterrows():
        cells = [row.method] + [_cell(row, *c[1:]) for c in columns]
        if same:
            cells.append(f"{row.equals_greedy * row.prompts:.0f} of {row.prompts}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def decoder_markdown(tables: dict | None) -> str:
    if tables is None:
        return OFF
    summary = tables["summary"]
    training = tables.get("training", {})
    said = findings(tables)
    measured = [line for line in said if not line.startswith("Simulation")]
    checked = [line for line in said if line.startswith("Simulation")]
    prompts = int(summary.prompts.max())
    rounds = int(summary["rounds"].max()) if "rounds" in summary else 0
    threads = summary.threads.iloc[0] if "threads" in summary else "?"
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
        + f" in {training.get('train_seconds', '?')} s."
    )
    where = (
        f'<p class="caption">{prompts} prompts, {rounds} interleaved rounds, batch 1, '
        f"{threads} thread(s); [95% bootstrap interval over prompts].</p>"
    )
    slides = [
        "# Early exit in a decoder: quality against speed\n\n"
        '<img src="/figures/decoder_tradeoff.png" class="figure short" '
        'alt="Agreement and perplexity against measured speed for every decoding method" />\n\n'
        '<p class="caption">Agreement: share of tokens that are the full model\'s greedy choice '
        "given the same prefix; perplexity of the output under the full model; "
        f"{prompts} prompts, bootstrap intervals over prompts.</p>",
        "# Decoder: what held up on a CPU\n\n"
        + "\n".join(f"- {line}" for line in measured)
        + "\n\n"
        + _notes(summary),
        "# Decoder: measured speed, ours and the peer\n\n"
        + slide_table(summary, SPEED, same=True)
        + "\n\n"
        + where
        + "\n\n"
        + _notes(summary[[c for c in summary.columns if not c.endswith(("_lo", "_hi"))]]),
        "# Decoder: what the speed costs\n\n" + slide_table(summary, QUALITY) + "\n\n" + where,
        "# Self-speculative decoding: simulated and measured\n\n"
        '<img src="/figures/decoder_acceptance.png" class="figure short" '
        'alt="Acceptance and tokens per verification against the draft exit layer" />\n\n'
        '<p class="caption">Lines: simulated from the stored per-token exit outputs; '
        "stars: the measured run at the knobs the sweep chose.</p>\n\n"
        + _notes(tables["speculative"]),
        "# Decoder: the exits, and the simulation checked\n\n"
        + f"- {setup}\n"
        + "".join(f"- {line}\n" for line in checked)
        + (
            "- " + perplexity_markdown(tables["perplexity"]) + "\n"
            if "perplexity" in tables
            else ""
        ),
    ]
    return "\n\n---\n\n".join(slides) + "\n"


def write_decoder_slides(inputs: dict, out_path) -> None:
    """`inputs`: the stage's table paths (empty when the stage is off)."""
    tables = load_tables(inputs) if inputs.get("summary") else None
    write_text(out_path, decoder_markdown(tables))
