import pytest
from fake_runs import make_run, save_run

from early_exit.analysis.runs import load_runs, split_paths
from early_exit.support.errors import DataError
from early_exit.support.layout import parse_run_dir


def test_run_directories_name_task_method_and_seed():
    assert parse_run_dir("results/bbc-news/static-3/seed13") == ("bbc-news", "static-3", 13)
    with pytest.raises(DataError, match="not a run directory"):
        parse_run_dir("results/bbc-news/static-3")


def test_runs_load_from_a_comma_separated_parameter(tmp_path):
    made = [
        make_run([[0, 1]], [1], [1, 2], seed=1, temperatures=[0.5, 2.0]),
        make_run([[0, 1]], [1], [1, 2], method="other", seed=2),
    ]
    paths = [save_run(run, tmp_path / "results") for run in made]
    runs = load_runs(",".join(str(p) for p in paths) + ",")
    assert [(r.task, r.method, r.seed) for r in runs] == [("news", "m", 1), ("news", "other", 2)]
    assert runs[0].temperatures.tolist() == [0.5, 2.0]
    out = runs[0].outputs("test")
    assert out.logits.shape == (1, 2, 3) and out.temperatures.tolist() == [0.5, 2.0]
    assert runs[0].metric == "accuracy" and runs[0].num_layers == 2
    with pytest.raises(DataError, match="no run directories"):
        split_paths(" , ")
