"""The stage's tiny-model run, shared by test_stage.py and test_report.py.

The tiny decoder's matrices are 32 wide: one thread runs them 40x faster than two on a
loaded 2-core machine (measured: 0.05 s against 1.7 s of CPU for one 16-token generation)."""

import pandas as pd
import pytest
import torch
from tiny_decoder import prompts, tiny_llama, training_text

from early_exit.decoder import stage
from early_exit.decoder.exits import train_exits
from early_exit.decoder.settings import decoder_settings
from early_exit.decoder.speculative import DraftVocabulary
from early_exit.decoder.stack import DecoderStack
from early_exit.decoder.stored import load_outputs, store_outputs
from early_exit.decoder.training import ranked_tokens

NEW = 16  # new tokens per prompt in the stage's tests


@pytest.fixture(autouse=True, scope="package")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="package")
def stage_tiny():
    model = tiny_llama()
    stack = DecoderStack(model)
    text = training_text()
    exits, _ = train_exits(stack, text, [1, 2, 3], epochs=1, batch=64)
    vocabulary = DraftVocabulary(stack, [], 40, ranked=ranked_tokens(text))
    named = {f"p{i}": p for i, p in enumerate(prompts(6))}
    return model, stack, exits, vocabulary, named


@pytest.fixture(scope="package")
def stored(stage_tiny):
    model, stack, exits, vocabulary, named = stage_tiny
    plain = store_outputs(model, stack, exits, named, NEW)
    narrow = store_outputs(model, stack, exits, named, NEW, vocabulary)
    return plain, narrow


@pytest.fixture(scope="package")
def stage_run(stage_tiny, tmp_path_factory):
    """The stage's jobs after loading: store, sweep, measure, on the tiny model."""
    model, stack, exits, vocabulary, named = stage_tiny
    section = {  # the rest: the settings' defaults
        "enabled": True,
        "new_tokens": NEW,
        "prompts": len(named),
        "exits": {"layers": [1, 2, 3]},
        "sweep": {"draft_lengths": [1, 2, 4], "thresholds": 11},
        "benchmark": {
            "rounds": 2,
            "peer": [2],
            "calm_agreement": [0.9, 0.5],
        },
        "bootstrap": {"resamples": 200, "confidence": 0.95, "seed": 0},
    }
    settings = decoder_settings({"decoder": section})
    out = tmp_path_factory.mktemp("decoder")
    loaded = stage.Loaded(model, stack, exits, vocabulary)
    held_out = training_text(3, seed=9)
    stage.store(loaded, named, held_out, settings, out / "outputs")
    knobs = stage.sweep_job(
        settings, out / "outputs", out / "spec.tsv", out / "calm.tsv", out / "knobs.json"
    )
    tokens, meta = load_outputs(out / "outputs")
    sweeps = {
        "speculative": pd.read_csv(out / "spec.tsv", sep="\t"),
        "calm": pd.read_csv(out / "calm.tsv", sep="\t"),
    }
    frame, summary, checks = stage.measure(loaded, named, knobs, settings, tokens, meta, sweeps)
    return settings, out, knobs, frame, summary, checks
