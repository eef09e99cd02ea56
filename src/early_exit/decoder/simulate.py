"""Knob sweeps from the stored per-token exit outputs (`early_exit.decoder.stored`), no model.

**Self-speculative decoding** (E, k), exactly as `speculative_generate` runs it: after the
prefill's token, each round drafts up to k tokens (fewer near the length limit), the
verification accepts the leading drafts equal to the greedy tokens and adds the full
model's own next token. A draft is only accepted if every earlier draft of its round was,
so its context is the greedy prefix: the stored draft top-1 at that position decides it.
Accepted drafts per round, rounds and tokens per verification are therefore exact;
the number drafted is exact too, except when a draft *after* the round's first rejection
is an end token (the real draft then stops early; its context is not the greedy prefix,
so the stored rows cannot say): the simulation counts the full budget there.

**CALM** at threshold t: each token after the first leaves at the first exit whose stored
confidence exceeds t (else runs every layer); it agrees with the full model when that
exit's top-1 is the greedy token. Exact along the greedy prefix while every cache entry
below the exit holds what the full model computes (see `early_exit.decoder.benchmark`).

**Cost model** (stated, not measured): batch-1 decoding reads every weight it uses once
per call, whatever the number of tokens in the call, so a call costs its weights'
multiply-adds per token (`stored.model_sizes`): a layer, the head (49,152 x 576 for
SmolLM2, ~8 layers), an exit map, a confidence unit, a skipped layer's key/value
projections under CALM's propagation, the draft's head (the draft vocabulary's rows).
Attention over the context is not counted. Plain greedy costs one layer stack and one
head per token. `layer_speedup` is L / mean exit layer (layers only);
`model_speedup` is greedy's cost over the method's under this model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from early_exit.decoder.stats import ratio_interval

# --------------------------------------------------------------------------- speculative


def simulate_speculative(
    greedy: list[int], draft: list[int], draft_length: int, max_new: int, ends
) -> dict:
    """One prompt: `greedy` tokens (index 0 from the prefill) and the stored draft top-1 at
    each index; the counts `speculative_generate` would report and its per-round accepts."""
    ends = set(ends)
    out = 1
    done = greedy[0] in ends or out >= max_new
    per_round: list[int] = []
    drafted_total = 0
    while not done:
        budget = min(draft_length, max_new - out - 1)
        accepted = drafted = 0
        while drafted < budget:
            if drafted > accepted:  # past the first rejection: context not greedy, unknown
                drafted = budget
                break
            token = draft[out + drafted]
            drafted += 1
            if token == greedy[out + drafted - 1]:
                accepted += 1
            if token in ends:
                break
        new = greedy[out : out + accepted + 1]
        for position, token in enumerate(new):
            if token in ends:
                new = new[: position + 1]
                done = True
                break
        new = new[: max_new - out]
        out += len(new)
        done = done or out >= max_new or out >= len(greedy)
        per_round.append(accepted)
        drafted_total += drafted
    return {
        "rounds": len(per_round),
        "drafted": drafted_total,
        "accepted": sum(per_round),
        "tokens": out,
        "trace": per_round,
    }


def speculative_cost(sim: dict, layer: int, sizes: dict) -> tuple[float, float]:
    """(method's cost, greedy's cost) of the tokens after the prefill, in multiply-adds."""
    full = sizes["num_layers"] * sizes["layer"] + sizes["head"]
    draft_step = layer * sizes["layer"] + sizes["map"] + sizes["draft_head"]
    method = sim["drafted"] * draft_step + sim["rounds"] * full
    return method, (sim["tokens"] - 1) * full


def prompts_of(tokens: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {name: part.sort_values("index") for name, part in tokens.groupby("prompt", sort=False)}


def speculative_sweep(
    tokens: pd.DataFrame, meta: dict, draft_lengths, bootstrap=None
) -> pd.DataFrame:
    """Every trained exit E x every draft length k: acceptance, tokens per verification,
    mean draft and the cost model's speed-up, each with an interval over prompts."""
    boot = bootstrap or {}
    rows = []
    per_prompt = prompts_of(tokens)
    for layer in meta["layers"]:
        for k in draft_lengths:
            sims = [
                simulate_speculative(
                    part.token.tolist(),
                    part[f"draft_{layer}"].tolist(),
                    k,
                    meta["new_tokens"],
                    meta["end_tokens"],
                )
                for part in per_prompt.values()
            ]
            accepted = [s["accepted"] for s in sims]
            drafted = [s["drafted"] for s in sims]
            rounds = [s["rounds"] for s in sims]
            after = [s["tokens"] - 1 for s in sims]
            costs = [speculative_cost(s, layer, meta["sizes"]) for s in sims]
            row = {"layer": layer, "draft": k, "prompts": len(sims)}
            row.update(_with_ci("acceptance", ratio_interval(accepted, drafted, **boot)))
            row.update(_with_ci("tokens_per_verification", ratio_interval(after, rounds, **boot)))
            row.update(_with_ci("mean_draft", ratio_interval(drafted, rounds, **boot)))
            greedy_cost = [g for _, g in costs]
            method_cost = [m for m, _ in costs]
            row.update(_with_ci("model_speedup", ratio_interval(greedy_cost, method_cost, **boot)))
            rows.append(row)
    return pd.DataFrame(rows)


def best_speculative(sweep: pd.DataFrame) -> tuple[int, int]:
    """The (E, k) with the highest simulated speed-up under the cost model (ties: the
    shallower exit, the shorter draft)."""
    ranked = sweep.sort_values(["model_speedup", "layer", "draft"], ascending=[False, True, True])
    top = ranked.iloc[0]
    return int(top.layer), int(top.draft)


# --------------------------------------------------------------------------- CALM


def calm_exits(
    part: pd.DataFrame, layers: list[int], num_layers: int, threshold: float
) -> list[int]:
    """The exit layer of every token of one prompt (index 0: the prefill, every layer)."""
    found = [num_layers]
    confidence = {layer: part[f"confidence_{layer}"].to_numpy() for layer in layers}
    for index in range(1, len(part)):
        exit_ = num_layers
        for layer in layers:
            if confidence[layer][index] > threshold:
                exit_ = layer
                break
        found.append(exit_)
    return found


def calm_prompt(part: pd.DataFrame, meta: dict, threshold: float) -> dict:
    layers, top = meta["layers"], meta["num_layers"]
    sizes = meta["sizes"]
    exits = calm_exits(part, layers, top, threshold)
    greedy = part.token.to_numpy()
    agree = [1]  # the prefill's token is the full model's
    cost = 0.0
    for index in range(1, len(part)):
        layer = exits[index]
        if layer == top:
            agree.append(int(part.final_top1.iloc[index] == greedy[index]))
            evaluated = len(layers)
        else:
            agree.append(int(part[f"top1_{layer}"].iloc[index] == greedy[index]))
            evaluated = layers.index(layer) + 1
        cost += layer * sizes["layer"] + evaluated * (sizes["map"] + sizes["confidence"])
        cost += (top - layer) * sizes["kv"] + sizes["head"]
    full = (len(part) - 1) * (top * sizes["layer"] + sizes["head"])
    return {
        "exits": exits,
        "layer_sum": float(sum(exits)),
        "tokens": len(exits),
        "agreed": float(sum(agree)),
        "cost": cost,
        "full_cost": float(full),
    }


def calm_sweep(tokens: pd.DataFrame, meta: dict, thresholds, bootstrap=None) -> pd.DataFrame:
    """Each threshold: mean exit layer (the first token counted at the last layer, as the
    real run counts it), agreement with the full model's greedy tokens along the greedy
    prefix, layer and cost-model speed-ups, each with an interval over prompts."""
    boot = bootstrap or {}
    per_prompt = prompts_of(tokens)
    top = meta["num_layers"]
    rows = []
    for threshold in thresholds:
        sims = [calm_prompt(part, meta, float(threshold)) for part in per_prompt.values()]
        layer_sum = [s["layer_sum"] for s in sims]
        count = [s["tokens"] for s in sims]
        row = {"threshold": float(threshold), "prompts": len(sims)}
        row.update(_with_ci("mean_exit_layer", ratio_interval(layer_sum, count, **boot)))
        row.update(
            _with_ci("agreement", ratio_interval([s["agreed"] for s in sims], count, **boot))
        )
        speed = ratio_interval([top * c for c in count], layer_sum, **boot)
        row.update(_with_ci("layer_speedup", speed))
        cost = ratio_interval([s["full_cost"] for s in sims], [s["cost"] for s in sims], **boot)
        row.update(_with_ci("model_speedup", cost))
        rows.append(row)
    return pd.DataFrame(rows)


def calm_thresholds(sweep: pd.DataFrame, targets) -> tuple[list[float], list[float]]:
    """For each target agreement, the lowest swept threshold below 1 whose simulated
    agreement reaches it (the most exiting at that quality); and the targets no such
    threshold reaches (a threshold of 1 never exits: it is our layer walk, measured anyway)."""
    chosen, unmet = [], []
    for target in targets:
        ok = sweep[(sweep.agreement >= target) & (sweep.threshold < 1)]
        if not len(ok):
            unmet.append(target)
        elif float(ok.threshold.min()) not in chosen:
            chosen.append(float(ok.threshold.min()))
    return chosen, unmet


def threshold_grid(count: int) -> list[float]:
    return [round(float(t), 6) for t in np.linspace(0.0, 1.0, count)]


def _with_ci(name: str, triple) -> dict:
    value, low, high = triple
    return {name: value, f"{name}_lo": low, f"{name}_hi": high}
