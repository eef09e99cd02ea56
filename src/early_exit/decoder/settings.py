"""The `decoder:` config section as typed settings, defaults in one place.

The schema (workflow/schemas/config.schema.yaml) checks types and ranges and carries the
same defaults (tests/architecture/test_one_place.py holds them equal to the dataclasses'
here); what it cannot say (a benchmark layer that has no trained exit) is checked here.
Every job of the decoder stage takes a `DecoderSettings`. Lists are tuples: the settings
are frozen.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from early_exit.decoder.loading import PACKAGED
from early_exit.support.errors import ConfigError


@dataclass(frozen=True)
class ExitTraining:
    """`decoder.exits`: exit maps and confidence units, trained with the backbone frozen."""

    layers: tuple[int, ...] = (6, 12, 18)
    """Exit layers, each below the model's last layer (checked on loading)."""
    stories: int = 24
    """Train-split prompts."""
    generate: int = 24
    """> 0: self-distilled on the model's own greedy continuation of this many tokens;
    0: on the article's real headline."""
    epochs: int = 1
    batch: int = 128
    """Tokens per Adam step."""
    learning_rate: float = 1.0e-3


@dataclass(frozen=True)
class Sweep:
    """`decoder.sweep`: the knob sweeps simulated from the stored outputs."""

    draft_lengths: tuple[int, ...] = (1, 2, 3, 4, 6)
    """Speculative draft lengths k (every trained exit layer is an E)."""
    thresholds: int = 41
    """CALM thresholds, evenly spaced in [0, 1]."""


@dataclass(frozen=True)
class Benchmark:
    """`decoder.benchmark`: the measured run and its check against the simulation."""

    rounds: int = 2
    """Interleaved rounds; each runs every method on every prompt once."""
    speculative: tuple[tuple[int, int], ...] = ()
    """(E, k) pairs run besides the best simulated one."""
    calm_agreement: tuple[float, ...] = (0.9,)
    """CALM runs at the lowest threshold whose simulated agreement reaches each."""
    peer: tuple[int, ...] = (8,)
    """transformers' `assistant_early_exit` at each E."""
    tolerance: float = 0.1
    """Share of a method's prompts whose real run may break its simulation's check."""


@dataclass(frozen=True)
class Bootstrap:
    """`decoder.bootstrap`: the intervals over prompts (and held-out texts)."""

    resamples: int = 2000
    confidence: float = 0.95
    seed: int = 0


@dataclass(frozen=True)
class DecoderSettings:
    """The config's `decoder:` section, typed (its defaults are written only here: the
    schema's are checked against them in tests/architecture/test_one_place.py)."""

    model: str = PACKAGED
    """A hub id, a local folder, a .gguf file or the packaged SmolLM2-135M-Instruct."""
    threads: int = 1
    """torch threads of the decoder jobs (1 on a shared 2-core machine)."""
    seed: int = 13
    """Data seed of the BBC split."""
    prompts: int = 12
    """Test-split prompts: the stored outputs and the benchmark."""
    new_tokens: int = 24
    """Greedy tokens per prompt."""
    held_out: int = 8
    """Dev stories for the held-out perplexity per exit."""
    draft_vocab: int = 4096
    """The draft scores the N most frequent training tokens (0: the full head)."""
    exits: ExitTraining = field(default_factory=ExitTraining)
    sweep: Sweep = field(default_factory=Sweep)
    benchmark: Benchmark = field(default_factory=Benchmark)
    bootstrap: Bootstrap = field(default_factory=Bootstrap)

    @classmethod
    def from_config(cls, section: dict) -> DecoderSettings:
        """The settings of a `decoder:` section (`enabled` is the workflow's, not held)."""
        section = {k: v for k, v in section.items() if k != "enabled"}
        parts = {
            "exits": ExitTraining(**_tuples(section.pop("exits", None) or {})),
            "sweep": Sweep(**_tuples(section.pop("sweep", None) or {})),
            "benchmark": _benchmark(section.pop("benchmark", None) or {}),
            "bootstrap": Bootstrap(**(section.pop("bootstrap", None) or {})),
        }
        settings = cls(**section, **parts)
        check_settings(settings)
        return settings

    def replace(self, **changes) -> DecoderSettings:
        return dataclasses.replace(self, **changes)


def _tuples(section: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in section.items()}


def _benchmark(section: dict) -> Benchmark:
    section = dict(section)
    pairs = []
    for index, item in enumerate(section.pop("speculative", None) or []):
        if not isinstance(item, dict) or set(item) != {"layer", "draft"}:
            raise ConfigError(
                f"decoder.benchmark.speculative[{index}]: {{layer: E, draft: k}}, got {item!r}"
            )
        pairs.append((int(item["layer"]), int(item["draft"])))
    return Benchmark(speculative=tuple(pairs), **_tuples(section))


def decoder_settings(config: dict) -> DecoderSettings | None:
    """The section with defaults filled in; None when it is absent or `enabled: false`."""
    section = config.get("decoder")
    if not section or not section.get("enabled", False):
        return None
    return DecoderSettings.from_config(section)


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
