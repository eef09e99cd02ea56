"""The measured benchmark: every method on the same prompts in interleaved rounds, its
summary with bootstrap intervals over prompts, and the check of the real runs against the
simulation from stored outputs.

Methods: plain greedy (`generate`), the same greedy through our layer walk (CALM with a
threshold of 1: no exit, the cost of walking the layers from Python), self-speculative
decoding at each (E, k), CALM at each threshold, transformers' `assistant_early_exit` at
each E. Each round runs every prompt under every method, the method order rotated per
prompt, so a slow spell of a shared machine falls on every method alike. Batch 1 for all:
our layer walk keeps one sequence's cache (speculative rounds and CALM exits differ per
sequence), and transformers' assisted generation does not batch either.

Figures (each over the prompts, with a percentile bootstrap interval over prompts):
tokens/s (all tokens over all seconds), speed against greedy (per prompt, greedy's time
over the method's in the same round, mean over rounds, then over prompts), output equal
to greedy (share of prompts), acceptance (accepted / drafted) and tokens per verification
(speculative), mean exit layer (CALM), agreement with the full model's greedy choice given
the same prefix and perplexity under the full model (every method; greedy's own output
scores 1 and its own perplexity).

The check (`check_runs`): speculative: per prompt, the real run's accepted drafts per
round must equal the simulated ones and its output the stored greedy output. CALM: for
each token up to the first one whose output differs from greedy (inclusive), the real
exit layer r_i and the simulated s_i; with m_i the lowest exit layer of the tokens before
it (the prefill's token: the last layer), every cache entry at layers <= m_i holds what
the full model computes, so r_i <= m_i requires s_i == r_i, and r_i > m_i requires
s_i > m_i (the token passed those exits in both). Beyond that, propagated keys and values
make the two differ by design; the share of tokens with equal exit layers is reported.
A prompt breaking its check counts against `tolerance` (float near-ties: the stored pass
runs the sequence at once, the real run token by token).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from early_exit.decoder.simulate import (
    calm_exits,
    prompts_of,
    simulate_speculative,
)
from early_exit.decoder.stats import exp_interval, mean_interval, ratio_interval
from early_exit.support.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class Method:
    name: str
    kind: str  # greedy, walk, speculative, calm, peer
    run: Callable
    layer: int | None = None  # speculative E, peer E
    draft: int | None = None  # speculative k
    threshold: float | None = None  # CALM


def build_methods(model, stack, exits, new_tokens, speculative, calm, peer, vocabulary=None):
    from early_exit.decoder.calm import calm_generate
    from early_exit.decoder.peer import hf_generate
    from early_exit.decoder.speculative import speculative_generate

    n = new_tokens
    found = [
        Method("greedy", "greedy", lambda p: hf_generate(model, p, n)),
        Method("greedy (our layer walk)", "walk", lambda p: calm_generate(stack, exits, p, 1.0, n)),
    ]
    for layer, draft in speculative:
        label = f"speculative E={layer} k={draft}"
        if vocabulary is not None:
            label += f" vocab={len(vocabulary)}"
        run = lambda p, e=layer, k=draft: speculative_generate(  # noqa: E731
            stack, exits, p, e, k, n, 0.0, vocabulary
        )
        found.append(Method(label, "speculative", run, layer=layer, draft=draft))
    for threshold in calm:
        run = lambda p, t=threshold: calm_generate(stack, exits, p, t, n)  # noqa: E731
        found.append(Method(f"calm t={threshold:g}", "calm", run, threshold=threshold))
    for layer in peer:
        run = lambda p, e=layer: hf_generate(model, p, n, assistant_early_exit=e)  # noqa: E731
        found.append(Method(f"peer assistant_early_exit={layer}", "peer", run, layer=layer))
    return found


def run_rounds(methods: list[Method], prompts: dict[str, list[int]], rounds: int) -> pd.DataFrame:
    """Interleaved rounds; one row per round, prompt and method."""
    names = list(prompts)
    for method in methods:  # warm-up: every code path once
        method.run(prompts[names[0]][:16])
    rows = []
    for round_ in range(rounds):
        for index, name in enumerate(names):
            shift = (round_ * len(names) + index) % len(methods)
            for method in methods[shift:] + methods[:shift]:
                began = time.perf_counter()
                out = method.run(prompts[name])
                seconds = time.perf_counter() - began
                rows.append(
                    {
                        "round": round_,
                        "prompt": name,
                        "method": method.name,
                        "kind": method.kind,
                        "tokens": len(out.tokens),
                        "seconds": seconds,
                        "output": " ".join(map(str, out.tokens)),
                        "trace": " ".join(map(str, out.trace)),
                        **out.stats,
                    }
                )
                log.info(
                    "round %d %s %s: %d tokens in %.2f s",
                    round_,
                    name,
                    method.name,
                    len(out.tokens),
                    seconds,
                )
    return pd.DataFrame(rows)


def _ints(text) -> list[int]:
    return [] if not isinstance(text, str) or not text else [int(t) for t in text.split()]


def full_model_views(stack, frame: pd.DataFrame, prompts: dict[str, list[int]]) -> pd.DataFrame:
    """Round 0's output of every method as the full model sees it (agreement, perplexity).
    Methods whose output is greedy's (speculative, the walk, the peer) share one view per
    prompt: the full model's pass over the same tokens is computed once."""
    from early_exit.decoder.calm import full_model_view

    rows, seen = [], {}
    for row in frame[frame["round"] == 0].itertuples():
        tokens = _ints(row.output)
        key = (row.prompt, tuple(tokens))
        if key not in seen:
            seen[key] = full_model_view(stack, prompts[row.prompt], tokens)
        rows.append(
            {"method": row.method, "prompt": row.prompt, "tokens": len(tokens), **seen[key]}
        )
    return pd.DataFrame(rows)


def summarise(frame, methods, views, boot: dict, num_layers: int, sweeps=None) -> pd.DataFrame:
    """One row per method: each figure with its interval over prompts and the prompt count."""
    greedy = frame[frame.kind == "greedy"].set_index(["round", "prompt"])
    frame = frame.copy()
    frame["equals_greedy"] = [
        r.output == greedy.loc[(r.round, r.prompt), "output"] for r in frame.itertuples()
    ]
    frame["time_ratio"] = [
        greedy.loc[(r.round, r.prompt), "seconds"] / r.seconds for r in frame.itertuples()
    ]
    rows = []
    for method in methods:
        part = frame[frame.method == method.name]
        by_prompt = part.groupby("prompt", sort=False)
        first = part[part["round"] == 0].set_index("prompt")
        row = {
            "method": method.name,
            "kind": method.kind,
            "layer": method.layer,
            "draft": method.draft,
            "threshold": method.threshold,
            "prompts": part.prompt.nunique(),
            "rounds": part["round"].nunique(),
        }
        row.update(
            _ci(
                "tokens_per_s",
                ratio_interval(by_prompt.tokens.sum(), by_prompt.seconds.sum(), **boot),
            )
        )
        row.update(_ci("speed_vs_greedy", mean_interval(by_prompt.time_ratio.mean(), **boot)))
        row.update(_ci("equals_greedy", mean_interval(first.equals_greedy.astype(float), **boot)))
        view = views[views.method == method.name]
        row.update(
            _ci(
                "agreement",
                ratio_interval(view.full_model_agreement * view.tokens, view.tokens, **boot),
            )
        )
        nll = [math.log(p) * n for p, n in zip(view.perplexity, view.tokens, strict=True)]
        row.update(_ci("perplexity", exp_interval(nll, view.tokens, **boot)))
        if method.kind == "speculative":
            row.update(_ci("acceptance", ratio_interval(first.accepted, first.drafted, **boot)))
            row.update(
                _ci(
                    "tokens_per_verification",
                    ratio_interval(first.tokens - 1, first.rounds, **boot),
                )
            )
            row.update(_ci("mean_draft", ratio_interval(first.drafted, first.rounds, **boot)))
        if method.kind in ("calm", "walk"):
            counted = first.steps + 1
            layer_sum = first.mean_exit_layer * counted
            row.update(_ci("mean_exit_layer", ratio_interval(layer_sum, counted, **boot)))
            row.update(
                _ci("layer_speedup", ratio_interval(num_layers * counted, layer_sum, **boot))
            )
        if sweeps is not None:
            row["simulated_model_speedup"] = simulated_speedup(method, sweeps)
        rows.append(row)
    return pd.DataFrame(rows)


def simulated_speedup(method: Method, sweeps: dict) -> float:
    """The cost model's speed-up at the method's knob, from the sweeps (NaN elsewhere)."""
    if method.kind == "speculative":
        sweep = sweeps["speculative"]
        hit = sweep[(sweep.layer == method.layer) & (sweep.draft == method.draft)]
    elif method.kind == "calm":
        sweep = sweeps["calm"]
        hit = sweep[(sweep.threshold - method.threshold).abs() < 1e-9]
    else:
        return math.nan
    return float(hit.model_speedup.iloc[0]) if len(hit) else math.nan


def _ci(name: str, triple) -> dict:
    value, low, high = triple
    return {name: value, f"{name}_lo": low, f"{name}_hi": high}


# --------------------------------------------------------------------------- the check


def check_runs(frame: pd.DataFrame, methods, tokens: pd.DataFrame, meta: dict) -> pd.DataFrame:
    """One row per checked method and prompt (round 0): what was compared and whether it
    held (see the module's docstring)."""
    stored = prompts_of(tokens)
    rows = []
    for method in methods:
        if method.kind not in ("speculative", "calm", "walk", "peer"):
            continue
        for row in frame[(frame.method == method.name) & (frame["round"] == 0)].itertuples():
            part = stored[row.prompt]
            greedy = part.token.tolist()
            out = _ints(row.output)
            check = {"method": method.name, "kind": method.kind, "prompt": row.prompt}
            if method.kind == "speculative":
                sim = simulate_speculative(
                    greedy,
                    part[f"draft_{method.layer}"].tolist(),
                    method.draft,
                    meta["new_tokens"],
                    meta["end_tokens"],
                )
                real = _ints(row.trace)
                check.update(
                    compared=len(real),
                    equal=sum(a == b for a, b in zip(real, sim["trace"], strict=False)),
                    real_accepted=int(row.accepted),
                    simulated_accepted=sim["accepted"],
                    real_drafted=int(row.drafted),
                    simulated_drafted=sim["drafted"],
                    output_is_greedy=out == greedy,
                    ok=real == sim["trace"] and out == greedy,
                )
            elif method.kind == "calm":
                check.update(calm_check(out, _ints(row.trace), part, meta, method.threshold))
            else:  # our walk and the peer: the output is greedy's
                check.update(compared=len(out), output_is_greedy=out == greedy, ok=out == greedy)
            rows.append(check)
    return pd.DataFrame(rows)


def calm_check(out: list[int], real: list[int], part: pd.DataFrame, meta: dict, threshold) -> dict:
    greedy = part.token.tolist()
    simulated = calm_exits(part, meta["layers"], meta["num_layers"], threshold)
    last = min(len(out), len(greedy)) - 1
    for index in range(min(len(out), len(greedy))):
        if out[index] != greedy[index]:
            last = index  # the first token that differs: decided on the greedy prefix
            break
    broken = equal = 0
    lowest = meta["num_layers"]
    for index in range(1, last + 1):
        r, s = real[index], simulated[index]
        equal += r == s
        if (r <= lowest and s != r) or (r > lowest and s <= lowest):
            broken += 1
        lowest = min(lowest, r)
    compared = max(last, 0)
    return {
        "compared": compared,
        "equal": equal,
        "broken": broken,
        "output_is_greedy": out == greedy,
        "ok": broken == 0,
    }


def enforce(checks: pd.DataFrame, tolerance: float) -> None:
    """A DataError when more than `tolerance` of a method's prompts break their check."""
    for name, part in checks.groupby("method", sort=False):
        failed = int((~part.ok.astype(bool)).sum())
        if failed > tolerance * len(part):
            raise DataError(
                f"decoder check: {name} differs from its simulation (or from greedy) on "
                f"{failed} of {len(part)} prompts, more than the tolerance {tolerance:g} "
                "(see check.tsv)"
            )
