"""The decoder stage's jobs, one function per workflow rule (workflow/rules/decoder.smk):

    decoder_model      the configured model as plain safetensors results/decoder/model/
    decoder_exits      train the exits (backbone frozen)        results/decoder/exits/
    decoder_outputs    one inference pass, per-token outputs    results/decoder/outputs/
    decoder_sweep      knob sweeps from the stored outputs      results/decoder/sweep_*.tsv
    decoder_benchmark  measured methods, checked against them   results/decoder/benchmark*.tsv

Each takes the `DecoderSettings` of the config; the parts that need the model take it
loaded (`Loaded`), so the tests run them on a tiny random Llama with token-id prompts.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from early_exit.decoder.settings import DecoderSettings
from early_exit.support.atomic import write_json
from early_exit.support.errors import DataError
from early_exit.support.tables import read_table, write_table

log = logging.getLogger(__name__)

SPECULATIVE_SWEEP = "sweep_speculative.tsv"
CALM_SWEEP = "sweep_calm.tsv"
KNOBS = "knobs.json"


@dataclass
class Loaded:
    """A model with its layer walk and trained exits (and the draft vocabulary, if any)."""

    model: object
    stack: object
    exits: object
    vocabulary: object | None
    seconds: float = 0.0


def boot(settings: DecoderSettings) -> dict:
    b = settings.bootstrap
    return {"resamples": b.resamples, "confidence": b.confidence, "seed": b.seed}


# --------------------------------------------------------------------------- loading


def load(settings: DecoderSettings, exits_dir, saved=None) -> tuple[Loaded, object]:
    """The configured model (from `saved`, its plain copy, when given), its exits from
    `exits_dir` and the draft vocabulary."""
    import transformers

    from early_exit.decoder.exits import load_exits
    from early_exit.decoder.loading import load_model
    from early_exit.decoder.speculative import DraftVocabulary
    from early_exit.decoder.stack import DecoderStack
    from early_exit.decoder.training import VOCABULARY

    transformers.utils.logging.set_verbosity_error()
    began = time.perf_counter()
    model, tokenizer = load_model(settings.model, settings.threads, saved)
    stack = DecoderStack(model)
    exits, _ = load_exits(exits_dir, model.config.hidden_size, model.config.num_hidden_layers)
    vocabulary = None
    if settings.draft_vocab:
        path = Path(exits_dir) / VOCABULARY
        try:
            ranked = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise DataError(f"{path}: cannot read it ({err}); rerun rule decoder_exits") from None
        vocabulary = DraftVocabulary(stack, [], settings.draft_vocab, ranked=ranked)
    return Loaded(model, stack, exits, vocabulary, time.perf_counter() - began), tokenizer


def test_prompts(settings: DecoderSettings, tokenizer, context: int) -> dict[str, list[int]]:
    """`settings.prompts` BBC test stories as headline chats, spread over the topics."""
    from early_exit.decoder.prompts import bbc_stories, chat, check_prompt, spread

    prompts = {}
    for story in spread(bbc_stories("test", settings.seed), settings.prompts):
        ids = chat(tokenizer, story)
        check_prompt(ids, context, settings.new_tokens, story.id)
        prompts[story.id] = ids
    return prompts


def held_out_texts(settings: DecoderSettings, tokenizer) -> list[list[int]]:
    from early_exit.decoder.prompts import bbc_stories, chat, spread

    stories = spread(bbc_stories("dev", settings.seed), settings.held_out)
    return [chat(tokenizer, story, answer=True) for story in stories]


# --------------------------------------------------------------------------- jobs


def model_job(settings: DecoderSettings, out_dir) -> None:
    """Read the configured model once (a GGUF file takes ~20 s) and save it plain."""
    from early_exit.decoder.loading import load_causal_lm, save_plain

    model, tokenizer = load_causal_lm(settings.model, threads=settings.threads)
    save_plain(model, tokenizer, out_dir, settings.model)


def exits_job(settings: DecoderSettings, saved, out_dir) -> dict:
    from early_exit.decoder.training import train_job

    return train_job(
        settings.model, out_dir, settings.exits, settings.threads, settings.seed, saved
    )


def store(loaded: Loaded, prompts, held_out, settings: DecoderSettings, out_dir) -> None:
    """The inference pass on loaded parts: tokens.tsv, perplexity.tsv, meta.json."""
    from early_exit.decoder.stored import (
        outputs_meta,
        per_text_nll,
        perplexity_table,
        store_outputs,
        write_outputs,
    )

    began = time.perf_counter()
    tokens = store_outputs(
        loaded.model, loaded.stack, loaded.exits, prompts, settings.new_tokens, loaded.vocabulary
    )
    stored = time.perf_counter() - began
    perplexity = perplexity_table(
        per_text_nll(loaded.stack, loaded.exits, held_out), **boot(settings)
    )
    vocab = len(loaded.vocabulary) if loaded.vocabulary is not None else 0
    meta = outputs_meta(
        loaded.model,
        loaded.exits,
        settings.new_tokens,
        vocab,
        {
            "model": settings.model,
            "prompts": list(prompts),
            "held_out_texts": len(held_out),
            "threads": settings.threads,
            "load_seconds": round(loaded.seconds, 1),
            "store_seconds": round(stored, 1),
            "perplexity_seconds": round(time.perf_counter() - began - stored, 1),
        },
    )
    final = tokens.final_top1 == tokens.token
    meta["final_layer_equals_greedy"] = float(final.mean())  # 1 but for float near-ties
    write_outputs(out_dir, tokens, perplexity, meta)


def outputs_job(settings: DecoderSettings, saved, exits_dir, out_dir) -> None:
    loaded, tokenizer = load(settings, exits_dir, saved)
    context = loaded.model.config.max_position_embeddings
    prompts = test_prompts(settings, tokenizer, context)
    store(loaded, prompts, held_out_texts(settings, tokenizer), settings, out_dir)


def sweep_job(settings: DecoderSettings, outputs_dir, speculative_out, calm_out, knobs_out) -> dict:
    """Both sweeps from the stored outputs, and the knobs the benchmark will run."""
    from early_exit.decoder.simulate import (
        best_speculative,
        calm_sweep,
        calm_thresholds,
        speculative_sweep,
        threshold_grid,
    )
    from early_exit.decoder.stored import load_outputs

    tokens, meta = load_outputs(outputs_dir)
    speculative = speculative_sweep(tokens, meta, settings.sweep.draft_lengths, boot(settings))
    calm = calm_sweep(tokens, meta, threshold_grid(settings.sweep.thresholds), boot(settings))
    best = best_speculative(speculative)
    chosen = [best] + [k for k in settings.benchmark.speculative if k != best]
    thresholds, unmet = calm_thresholds(calm, settings.benchmark.calm_agreement)
    if unmet:
        log.warning("CALM: no threshold below 1 reaches a simulated agreement of %s", unmet)
    knobs = {
        "speculative": [list(k) for k in chosen],
        "best_speculative": list(best),
        "calm": thresholds,
        "calm_agreement": settings.benchmark.calm_agreement,
        "calm_agreement_unmet": unmet,
        "peer": settings.benchmark.peer,
    }
    write_table(speculative, speculative_out)
    write_table(calm, calm_out)
    write_json(knobs_out, knobs)
    return knobs


def measure(loaded: Loaded, prompts, knobs: dict, settings: DecoderSettings, tokens, meta, sweeps):
    """Run the benchmark on loaded parts; (per-run rows, summary, check) tables."""
    from early_exit.decoder.benchmark import (
        build_methods,
        check_runs,
        full_model_views,
        run_rounds,
        summarise,
    )

    methods = build_methods(
        loaded.model,
        loaded.stack,
        loaded.exits,
        settings.new_tokens,
        [tuple(k) for k in knobs["speculative"]],
        knobs["calm"],
        knobs["peer"],
        loaded.vocabulary,
    )
    frame = run_rounds(methods, prompts, settings.benchmark.rounds)
    views = full_model_views(loaded.stack, frame, prompts)
    summary = summarise(frame, methods, views, boot(settings), loaded.stack.num_layers, sweeps)
    checks = check_runs(frame, methods, tokens, meta)
    return frame, summary, checks


def benchmark_job(
    settings: DecoderSettings,
    saved,
    exits_dir,
    outputs_dir,
    sweeps_in: dict,
    knobs_path,
    out: dict,
) -> None:
    """`out`: runs, summary, check (TSV paths). Written before the check is enforced, so
    the log names the table; the job then fails when the check does not hold."""
    from early_exit.decoder.benchmark import enforce
    from early_exit.decoder.stored import load_outputs

    tokens, meta = load_outputs(outputs_dir)
    knobs = json.loads(Path(knobs_path).read_text(encoding="utf-8"))
    sweeps = {
        "speculative": read_table(
            sweeps_in["speculative"], "speculative sweep", "rule decoder_sweep"
        ),
        "calm": read_table(sweeps_in["calm"], "CALM sweep", "rule decoder_sweep"),
    }
    loaded, tokenizer = load(settings, exits_dir, saved)
    prompts = test_prompts(settings, tokenizer, loaded.model.config.max_position_embeddings)
    if list(prompts) != [str(p) for p in meta["prompts"]]:
        raise DataError(
            f"{outputs_dir}: stored for other prompts than the config's; rerun rule decoder_outputs"
        )
    frame, summary, checks = measure(loaded, prompts, knobs, settings, tokens, meta, sweeps)
    summary["threads"] = settings.threads
    summary["load_average"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    write_table(frame, out["runs"])
    write_table(summary, out["summary"])
    write_table(checks, out["check"])
    log.info("benchmark:\n%s", summary.to_string())
    enforce(checks, settings.benchmark.tolerance)
