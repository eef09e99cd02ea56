"""The decoder stage on a tiny random Llama, end to end without the workflow: stored
per-token outputs -> sweeps that equal the real runs (speculative accepted drafts per
round exactly, CALM exit layers where the cache is the full model's), the benchmark
table's columns and intervals, the check that fails a run beyond its tolerance."""

import json

import pandas as pd
import pytest
from tiny_decoder import END

from early_exit.decoder.benchmark import calm_check, check_runs, enforce
from early_exit.decoder.calm import calm_generate
from early_exit.decoder.peer import hf_generate
from early_exit.decoder.simulate import (
    calm_exits,
    calm_sweep,
    calm_thresholds,
    simulate_speculative,
    speculative_sweep,
)
from early_exit.decoder.speculative import speculative_generate
from early_exit.support.errors import DataError

NEW = 16


def meta_for(model, layers):
    from early_exit.decoder.stored import model_sizes

    return {
        "layers": layers,
        "num_layers": model.config.num_hidden_layers,
        "new_tokens": NEW,
        "end_tokens": [END],
        "sizes": model_sizes(model.config),
    }


def test_stored_rows_follow_the_greedy_output(stage_tiny, stored):
    model, _, exits, _, named = stage_tiny
    plain, _ = stored
    for name, prompt in named.items():
        part = plain[plain.prompt == name]
        assert part.token.tolist() == hf_generate(model, prompt, NEW).tokens
        assert (part.final_top1 == part.token).all()  # the last layer is greedy's choice
        for layer in exits.layers:
            assert (
                (part[f"top1_{layer}"] == part.token) == part[f"agree_{layer}"].astype(bool)
            ).all()
            assert part[f"confidence_{layer}"].between(0, 1).all()


@pytest.mark.parametrize("vocab", [False, True])
@pytest.mark.parametrize("layer", [1, 2, 3])
@pytest.mark.parametrize("draft", [1, 3, 6])
def test_the_speculative_simulation_equals_the_real_run(stage_tiny, stored, vocab, layer, draft):
    model, stack, exits, vocabulary, named = stage_tiny
    table = stored[1] if vocab else stored[0]
    accepted = exact = 0
    for name, prompt in named.items():
        part = table[table.prompt == name]
        sim = simulate_speculative(
            part.token.tolist(), part[f"draft_{layer}"].tolist(), draft, NEW, [END]
        )
        real = speculative_generate(
            stack, exits, prompt, layer, draft, NEW, vocabulary=vocabulary if vocab else None
        )
        assert real.tokens == part.token.tolist()
        assert real.trace == sim["trace"]  # accepted drafts, round by round
        assert real.stats["rounds"] == sim["rounds"]
        assert real.stats["accepted"] == sim["accepted"]
        # drafted: exact unless a draft past a round's first rejection is the end token
        # (the real draft stops there; the stored rows cannot see it): seen here at E=1
        assert real.stats["drafted"] <= sim["drafted"]
        exact += real.stats["drafted"] == sim["drafted"]
        accepted += sim["accepted"]
    assert exact >= len(named) - 2
    if layer == 3:
        assert accepted > 0  # the accepting path is exercised, not only rejections


def test_the_simulation_at_the_length_limit_and_an_end_token():
    greedy = [5, 6, 7, END]
    # every draft right: one round drafts 6, 7 and the end token, then stops
    assert simulate_speculative(greedy, [0, 6, 7, END], 4, 10, [END])["trace"] == [3]
    # the first draft wrong: that round drafts its whole budget and accepts none; the
    # next starts after the verified token and accepts 7 and the end token
    sim = simulate_speculative(greedy, [0, 9, 7, END], 4, 10, [END])
    assert sim["trace"] == [0, 2] and sim["drafted"] == 4 + 2
    # the length limit: 3 tokens, the budget shrinks to what is left
    sim = simulate_speculative([5, 6, 7], [0, 6, 7], 4, 3, [END])
    assert sim["trace"] == [1] and sim["drafted"] == 1 and sim["tokens"] == 3
    assert simulate_speculative([END], [0], 4, 10, [END])["rounds"] == 0


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_calm_exit_layers_equal_the_simulation_where_the_cache_is_the_full_models(
    stage_tiny, stored, threshold
):
    model, stack, exits, _, named = stage_tiny
    plain, _ = stored
    meta = meta_for(model, exits.layers)
    exact = 0
    for name, prompt in named.items():
        part = plain[plain.prompt == name]
        real = calm_generate(stack, exits, prompt, threshold, NEW)
        assert len(real.trace) == len(real.tokens)
        check = calm_check(real.tokens, real.trace, part, meta, threshold)
        assert check["broken"] == 0, (name, check)
        exact += check["equal"]
        # up to and including the first early exit, the layers are identical
        simulated = calm_exits(part, exits.layers, stack.num_layers, threshold)
        first = next(
            (i for i, r in enumerate(real.trace) if r < stack.num_layers), len(real.trace) - 1
        )
        assert real.trace[: first + 1] == simulated[: first + 1]
    assert exact > 0


def test_the_calm_sweep_ends_at_greedy(stage_tiny, stored):
    model, _, exits, _, _ = stage_tiny
    sweep = calm_sweep(stored[0], meta_for(model, exits.layers), [0.0, 0.5, 1.0])
    never = sweep[sweep.threshold == 1.0].iloc[0]
    assert never.mean_exit_layer == model.config.num_hidden_layers
    assert never.agreement == 1.0 and never.layer_speedup == 1.0
    always = sweep[sweep.threshold == 0.0].iloc[0]
    assert always.mean_exit_layer < never.mean_exit_layer
    assert always.model_speedup > 1.0
    for column in ("mean_exit_layer", "agreement", "layer_speedup", "model_speedup"):
        assert (sweep[f"{column}_lo"] <= sweep[column] + 1e-12).all()
        assert (sweep[column] <= sweep[f"{column}_hi"] + 1e-12).all()


def test_the_speculative_sweep_counts_the_head_and_the_draft(stage_tiny, stored):
    model, _, exits, _, _ = stage_tiny
    sweep = speculative_sweep(stored[0], meta_for(model, exits.layers), [1, 4])
    assert set(zip(sweep.layer, sweep.draft, strict=True)) == {
        (e, k) for e in (1, 2, 3) for k in (1, 4)
    }
    assert (sweep.tokens_per_verification >= 1).all()
    assert (sweep.acceptance.between(0, 1)).all()
    assert (sweep.prompts == 6).all()


def test_the_stage_end_to_end(stage_run):
    settings, out, knobs, frame, summary, checks = stage_run
    assert (out / "outputs" / "perplexity.tsv").is_file()
    perplexity = pd.read_csv(out / "outputs" / "perplexity.tsv", sep="\t")
    assert perplexity.layer.tolist() == [1, 2, 3, 4]
    assert (perplexity.ci_low <= perplexity.perplexity).all()
    assert (perplexity.perplexity <= perplexity.ci_high).all()
    assert (perplexity.texts == 3).all()
    assert json.loads((out / "knobs.json").read_text())["speculative"] == knobs["speculative"]
    kinds = summary.kind.tolist()
    assert kinds.count("greedy") == kinds.count("walk") == 1
    assert "speculative" in kinds and "calm" in kinds and "peer" in kinds
    assert len(frame) == settings.benchmark.rounds * settings.prompts * len(summary)
    # every real run agrees with its simulation and speculative output is greedy's
    assert checks.ok.all(), checks
    assert checks[checks.kind == "speculative"].output_is_greedy.all()
    enforce(checks, 0.0)


def test_the_benchmark_table_has_its_columns_and_intervals(stage_run):
    *_, summary, _ = stage_run
    for column in ("tokens_per_s", "speed_vs_greedy", "agreement", "perplexity", "equals_greedy"):
        assert {column, f"{column}_lo", f"{column}_hi"} <= set(summary.columns)
        assert (summary[f"{column}_lo"] <= summary[column] + 1e-9).all(), column
        assert (summary[column] <= summary[f"{column}_hi"] + 1e-9).all(), column
    assert (summary.prompts == 6).all()
    spec = summary[summary.kind == "speculative"]
    for column in ("acceptance", "tokens_per_verification", "simulated_model_speedup"):
        assert spec[column].notna().all()
    calm = summary[summary.kind == "calm"]
    assert calm.mean_exit_layer.notna().all() and calm.mean_exit_layer_lo.notna().all()
    greedy = summary[summary.kind == "greedy"].iloc[0]
    assert greedy.speed_vs_greedy == 1.0 and greedy.agreement == 1.0


def test_the_check_fails_beyond_its_tolerance(stage_run):
    *_, checks = stage_run
    doctored = checks.copy()
    spec = doctored.index[doctored.kind == "speculative"]
    doctored.loc[spec[:1], "ok"] = False
    enforce(doctored, 0.5)  # one of six prompts: within a tolerance of a half
    with pytest.raises(DataError, match="decoder check: speculative .* 1 of 6 prompts"):
        enforce(doctored, 0.1)


def test_a_speculative_run_that_differs_is_caught(stage_tiny, stored):
    model, stack, exits, _, named = stage_tiny
    from early_exit.decoder.benchmark import Method

    plain, _ = stored
    method = Method("speculative E=2 k=3", "speculative", None, layer=2, draft=3)
    rows = []
    for name, prompt in named.items():
        real = speculative_generate(stack, exits, prompt, 2, 3, NEW)
        trace = real.trace if name != "p0" else [t + 1 for t in real.trace]
        rows.append(
            {
                "round": 0,
                "prompt": name,
                "method": method.name,
                "output": " ".join(map(str, real.tokens)),
                "trace": " ".join(map(str, trace)),
                **real.stats,
            }
        )
    checks = check_runs(pd.DataFrame(rows), [method], plain, meta_for(model, exits.layers))
    assert checks.ok.tolist() == [False] + [True] * 5


def test_calm_thresholds_for_each_target_agreement():
    sweep = pd.DataFrame({"threshold": [0.0, 0.5, 0.9, 1.0], "agreement": [0.1, 0.7, 0.85, 1.0]})
    assert calm_thresholds(sweep, [0.6, 0.8]) == ([0.5, 0.9], [])
    assert calm_thresholds(sweep, [0.7, 0.65]) == ([0.5], [])  # one threshold, measured once
    # only a threshold of 1 (never exit: our layer walk) reaches it: no CALM run for it
    assert calm_thresholds(sweep, [0.95, 0.6]) == ([0.5], [0.95])


def test_full_model_views_are_computed_once_per_distinct_output(stage_tiny, monkeypatch):
    from early_exit.decoder import benchmark, calm

    _, stack, _, _, named = stage_tiny
    name, prompt = next(iter(named.items()))
    calls = []
    real = calm.full_model_view

    def counted(stack_, prompt_, tokens):
        calls.append(tuple(tokens))
        return real(stack_, prompt_, tokens)

    monkeypatch.setattr(calm, "full_model_view", counted)
    frame = pd.DataFrame(
        {
            "round": [0, 0, 0, 1],
            "prompt": [name] * 4,
            "method": ["greedy", "speculative", "calm", "greedy"],
            "output": ["5 6 7", "5 6 7", "5 9", "5 6 7"],
        }
    )
    views = benchmark.full_model_views(stack, frame, {name: prompt})
    assert sorted(calls) == [(5, 6, 7), (5, 9)]  # round 0 only, one pass per distinct output
    assert views.method.tolist() == ["greedy", "speculative", "calm"]
    same = views.drop(columns="method")
    pd.testing.assert_series_equal(same.iloc[0], same.iloc[1], check_names=False)
    assert views.iloc[2].tokens == 2
