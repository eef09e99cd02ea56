"""Metric names live in one place (`data.registry.METRICS_BY_TYPE`): `metrics.py` computes
exactly those, and the config schema lists no metric or policy names of its own."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from early_exit.data.registry import METRICS_BY_TYPE
from early_exit.exits import metrics
from early_exit.support.errors import ConfigError

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def test_every_registered_metric_is_computed_and_no_other():
    names = [name for names in METRICS_BY_TYPE.values() for name in names]
    assert sorted(metrics._functions()) == sorted(names) == sorted(metrics.METRIC_NAMES)
    with pytest.raises(ConfigError, match="unknown metric 'f2'"):
        metrics.score_rows("f2", np.zeros(3), np.zeros((1, 3)))


def test_the_schema_leaves_metric_and_policy_names_to_the_registries():
    schema = yaml.safe_load(SCHEMA.read_text())
    task = schema["$defs"]["task"]["properties"]
    assert "enum" not in task["metric"] and "enum" not in task["policies"]["items"]
    assert "properties" not in schema["properties"]["sweep"]["properties"]["policies"]


def test_an_unknown_metric_in_the_config_is_named_with_its_task():
    from snakemake.utils import validate

    from early_exit.config.check import check_config

    config = yaml.safe_load((SCHEMA.parents[2] / "config" / "config.yaml").read_text())
    validate(config, str(SCHEMA))
    config["tasks"]["bbc-news"]["metric"] = "f2"
    with pytest.raises(ConfigError, match="tasks.bbc-news.metric: unknown metric 'f2'; allowed"):
        check_config(config)
