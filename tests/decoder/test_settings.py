"""The `decoder:` config section: the schema accepts the shipped configs and fills the
defaults the settings hold; out-of-range keys stop at config time in one line naming them."""

import copy
import dataclasses
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from early_exit.config.check import schema_errors
from early_exit.decoder.settings import DecoderSettings, decoder_settings
from early_exit.support.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def load(name: str) -> dict:
    return yaml.safe_load((REPO / "config" / f"{name}.yaml").read_text())


def schema_defaults(node: dict) -> dict:
    return {
        key: schema_defaults(sub) if "properties" in sub else sub.get("default")
        for key, sub in node["properties"].items()
    }


def plain(value):
    """Tuples as the lists YAML gives, recursively."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return [plain(v) for v in value] if isinstance(value, tuple | list) else value


def test_the_schema_defaults_are_the_settings_defaults():
    schema = yaml.safe_load(SCHEMA.read_text())
    defaults = schema_defaults(schema["properties"]["decoder"])
    assert defaults.pop("enabled") is False
    assert plain(dataclasses.asdict(DecoderSettings())) == defaults


def test_an_enabled_empty_section_is_the_defaults():
    assert decoder_settings({"decoder": {"enabled": True}}) == DecoderSettings()


@pytest.mark.parametrize("name", ["config", "smoke", "paper"])
def test_the_shipped_configs_validate(name):
    cfg = load(name)
    schema_errors(cfg, SCHEMA)
    validate(cfg, str(SCHEMA))  # fills the defaults
    settings = decoder_settings(cfg)
    if name == "smoke":
        assert settings is None  # the e2e test stays fast: test_stage.py runs the stage
    else:
        assert settings.prompts >= 12 and settings.exits.layers
        assert settings.benchmark.peer


def test_paper_scale_is_larger_than_the_default():
    default, paper = (decoder_settings(load(n)) for n in ("config", "paper"))
    assert paper.prompts > default.prompts
    assert paper.new_tokens > default.new_tokens
    assert len(paper.exits.layers) > len(default.exits.layers)


def test_an_absent_or_disabled_section_is_none():
    assert decoder_settings({}) is None
    assert decoder_settings({"decoder": {"enabled": False, "prompts": 3}}) is None


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"prompts": 1}, r"decoder.prompts: 1 is less than the minimum of 2"),
        ({"new_tokens": 0}, r"decoder.new_tokens: 0 is less than"),
        ({"threads": 0}, r"decoder.threads"),
        ({"draft_vocab": -1}, r"decoder.draft_vocab"),
        ({"model": ""}, r"decoder.model"),
        ({"exits": {"layers": []}}, r"decoder.exits.layers"),
        ({"exits": {"layers": [0]}}, r"decoder.exits.layers.0"),
        ({"exits": {"generate": -1}}, r"decoder.exits.generate"),
        ({"exits": {"learning_rate": 0}}, r"decoder.exits.learning_rate"),
        ({"sweep": {"draft_lengths": [0]}}, r"decoder.sweep.draft_lengths.0"),
        ({"sweep": {"thresholds": 1}}, r"decoder.sweep.thresholds"),
        ({"benchmark": {"calm_agreement": [1.5]}}, r"decoder.benchmark.calm_agreement.0"),
        ({"benchmark": {"tolerance": 2}}, r"decoder.benchmark.tolerance"),
        ({"benchmark": {"rounds": 0}}, r"decoder.benchmark.rounds"),
        ({"benchmark": {"speculative": [{"layer": 6}]}}, r"decoder.benchmark.speculative.0"),
        ({"bootstrap": {"confidence": 1}}, r"decoder.bootstrap.confidence"),
        ({"prompt": 4}, r"decoder: Additional properties are not allowed \('prompt'"),
    ],
)
def test_out_of_range_keys_are_named(edit, message):
    cfg = load("config")
    section = copy.deepcopy(cfg["decoder"])
    for key, value in edit.items():
        section[key] = {**section.get(key, {}), **value} if isinstance(value, dict) else value
    cfg["decoder"] = section
    with pytest.raises(ConfigError, match=message):
        schema_errors(cfg, SCHEMA)


def test_a_benchmark_layer_without_an_exit_is_named():
    section = {"enabled": True, "benchmark": {"speculative": [{"layer": 7, "draft": 2}]}}
    with pytest.raises(ConfigError, match="layer 7 is not in decoder.exits.layers"):
        decoder_settings({"decoder": section})
