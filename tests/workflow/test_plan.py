"""The workflow's shared planning (`early_exit.config.plan`): which runs are timed and served."""

from early_exit.config.plan import served_runs, timed_runs

CONFIG = {
    "sweep": {"policies": {"entropy": {"num_thresholds": 5}, "patience": {"tau": 0.5}}},
    "tasks": {"a": {}, "b": {"policies": ["entropy"]}},
}
INFO = {"deebert": {"criterion": "entropy"}, "pabee": {"criterion": "patience"}}


def test_every_early_exit_run_whose_criterion_its_task_sweeps_is_timed():
    runs = timed_runs(CONFIG, ["a", "b"], ["deebert", "pabee"], INFO, [13, 14])
    keys = [(r["run_key"]["task"], r["run_key"]["method"], r["run_key"]["seed"]) for r in runs]
    assert keys == [
        ("a", "deebert", "13"),
        ("a", "deebert", "14"),
        ("a", "pabee", "13"),
        ("a", "pabee", "14"),
        ("b", "deebert", "13"),  # task b does not sweep patience: PABEE is not timed there
        ("b", "deebert", "14"),
    ]
    pabee = runs[2]
    assert pabee["run_dir"] == "results/a/pabee/seed13" and pabee["data_dir"] == "data/a"
    assert pabee["policy"] == "patience" and pabee["options"] == {"tau": 0.5}
    assert runs[0]["options"] == {}  # entropy's num_thresholds only shapes the grid


def test_the_served_runs_are_one_tasks_at_the_first_seed():
    runs = timed_runs(CONFIG, ["a", "b"], ["deebert", "pabee"], INFO, [13, 14])
    served = served_runs(runs, "b", 13)
    assert [(r["run_key"]["method"], r["run_key"]["seed"]) for r in served] == [("deebert", "13")]
    assert served_runs(runs, "c", 13) == []  # a serving task the config does not run
