"""The `decoder:` config section as typed settings, defaults in one place.

The schema (workflow/schemas/config.schema.yaml) checks types and ranges and carries the
same defaults (a test holds them equal); what it cannot say (a benchmark layer that has no
trained exit) is checked here. Every job of the decoder stage takes a `DecoderSettings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from early_exit.decoder.loading import PACKAGED
from early_exit.support.errors import ConfigError

DEFAULTS = {
    "enabled": False,
    "model": PACKAGED,
    "threads": 1,
    "seed": 13,
    "prompts": 12,
    "new_tokens": 24,
    "held_out": 8,
    "draft_vocab": 4096,
    "exits": {
        "layers": [6, 12, 18],
        "stories": 24,
        "generate": 24,
        "epochs": 1,
        "batch": 128,
        "learning_rate": 1.0e-3,
    },
    "sweep": {"draft_lengths": [1, 2, 3, 4, 6], "thresholds": 41},
    "benchmark": {
        "rounds": 2,
        "speculative": [],
        "calm_agreement": [0.9],
        "peer": [8],
        "tolerance": 0.1,
    },
    "bootstrap": {"resamples": 2000, "confidence": 0.95, "seed": 0},
}


@dataclass(frozen=True)
class ExitTraining:
    layers: list[int]
    stories: int  # train-split prompts
    generate: int  # > 0: self-distilled on the model's own greedy continuation of this length
    epochs: int
    batch: int
    learning_rate: float


@dataclass(frozen=True)
class Sweep:
    draft_lengths: list[int]
    thresholds: int  # CALM thresholds, evenly spaced in [0, 1]


@dataclass(frozen=True)
class Benchmark:
    rounds: int
    speculative: list[tuple[int, int]]  # (E, k) run besides the best simulated one
    calm_agreement: list[float]  # CALM: the lowest threshold whose simulated agreement >= each
    peer: list[int]  # transformers' assistant_early_exit at each E
    tolerance: float  # share of prompts whose real run may differ from the simulation


@dataclass(frozen=True)
class Bootstrap:
    resamples: int
    confidence: float
    seed: int


@dataclass(frozen=True)
class DecoderSettings:
    model: str
    threads: int
    seed: int
    prompts: int  # test-split prompts: the stored outputs and the benchmark
    new_tokens: int
    held_out: int  # dev stories for the held-out perplexity
    draft_vocab: int  # the draft scores the N most frequent training tokens (0: full head)
    exits: ExitTraining
    sweep: Sweep
    benchmark: Benchmark
    bootstrap: Bootstrap = field(default_factory=lambda: Bootstrap(2000, 0.95, 0))


def _merged(section: dict) -> dict:
    merged = {**DEFAULTS, **section}
    for key in ("exits", "sweep", "benchmark", "bootstrap"):
        merged[key] = {**DEFAULTS[key], **(section.get(key) or {})}
    return merged


def decoder_settings(config: dict) -> DecoderSettings | None:
    """The section with defaults filled in; None when it is absent or `enabled: false`."""
    section = config.get("decoder")
    if not section or not section.get("enabled", DEFAULTS["enabled"]):
        return None
    s = _merged(section)
    bench = s["benchmark"]
    speculative = []
    for index, item in enumerate(bench["speculative"]):
        if not isinstance(item, dict) or set(item) != {"layer", "draft"}:
            raise ConfigError(
                f"decoder.benchmark.speculative[{index}]: {{layer: E, draft: k}}, got {item!r}"
            )
        speculative.append((int(item["layer"]), int(item["draft"])))
    settings = DecoderSettings(
        model=s["model"],
        threads=s["threads"],
        seed=s["seed"],
        prompts=s["prompts"],
        new_tokens=s["new_tokens"],
        held_out=s["held_out"],
        draft_vocab=s["draft_vocab"],
        exits=ExitTraining(**s["exits"]),
        sweep=Sweep(**s["sweep"]),
        benchmark=Benchmark(
            rounds=bench["rounds"],
            speculative=speculative,
            calm_agreement=list(bench["calm_agreement"]),
            peer=list(bench["peer"]),
            tolerance=bench["tolerance"],
        ),
        bootstrap=Bootstrap(**s["bootstrap"]),
    )
    check_settings(settings)
    return settings


def check_settings(settings: DecoderSettings) -> None:
    """What the schema cannot say: benchmark layers must be trained exit layers."""
    layers = settings.exits.layers
    if len(set(layers)) != len(layers):
        raise ConfigError(f"decoder.exits.layers: repeated layer in {layers}")
    for layer, _ in settings.benchmark.speculative:
        if layer not in layers:
            raise ConfigError(
                f"decoder.benchmark.speculative: layer {layer} is not in decoder.exits.layers "
                f"{layers}"
            )
