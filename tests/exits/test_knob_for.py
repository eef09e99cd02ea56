"""`knob_for` / `point_rows`: the one lookup of the knob a run uses."""

import pandas as pd
import pytest
from sweeps import sweep_rows

from early_exit.exits.operating_points import (
    DEFAULT_MAX_DROP,
    knob_for,
    point_rows,
    write_operating_points,
)
from early_exit.support.errors import ConfigError, DataError
from early_exit.support.tables import write_table

KEY = {"task": "cls", "method": "joint", "seed": 13}
# dev: full depth 0.90; within 0.01 the fastest is 0.5, within 0.2 it is 0.9
POINTS = [(0.1, 0.90, 1.0), (0.5, 0.895, 2.0), (0.9, 0.80, 3.0)]
STRICT, LOOSE = 0.5, 0.9


@pytest.fixture
def run(tmp_path):
    """results/cls/joint/seed13 with its stored outputs and sweep; no workflow table yet."""
    run = tmp_path / "results" / "cls" / "joint" / "seed13"
    run.mkdir(parents=True)
    write_table(pd.DataFrame(sweep_rows("cls", "joint", 13, POINTS, POINTS)), run / "sweep.tsv")
    return run


def test_without_the_workflows_table_the_knob_is_chosen_on_the_runs_sweep(run):
    assert DEFAULT_MAX_DROP < 0.1
    assert knob_for(run, "entropy") == STRICT
    assert knob_for(run, "entropy", 0.2) == LOOSE
    assert point_rows(run)["entropy"]["chosen_from"].startswith("the run's sweep.tsv")


def test_the_workflows_table_wins_unless_a_max_drop_is_given(run):
    table = run.parents[2] / "analysis" / "operating_points.tsv"
    write_operating_points([run / "sweep.tsv"], 0.2, table)
    assert knob_for(run, "entropy") == LOOSE
    assert point_rows(run)["entropy"]["chosen_from"].startswith("the workflow's")
    assert knob_for(run, "entropy", DEFAULT_MAX_DROP) == STRICT
    # Given a table and key directly (the timed stages), with no fallback
    assert knob_for(None, "entropy", key=KEY, points=table, fallback=False) == LOOSE
    other = KEY | {"seed": 14}
    with pytest.raises(DataError, match="no operating point for .*'seed': 14.* under entropy"):
        knob_for(None, "entropy", key=other, points=table, fallback=False)


def test_without_a_fallback_a_missing_table_is_named(run, tmp_path):
    with pytest.raises(DataError, match="nowhere.tsv"):
        knob_for(run, "entropy", key=KEY, points=tmp_path / "nowhere.tsv", fallback=False)


def test_no_sweep_or_no_such_policy_is_named(run, tmp_path):
    with pytest.raises(DataError, match="no sweep table"):
        knob_for(tmp_path / "elsewhere", "entropy")
    with pytest.raises(ConfigError, match="no sweep of policy 'confidence'"):
        knob_for(run, "confidence")
