"""What an export records about its run: which runtime policies either engine can use."""

from types import SimpleNamespace

from early_exit.inference.run_facts import latency_rows, runtime_policies


def test_runtime_policies_follow_the_task_and_the_gate():
    def engine(task_type, gated):
        return SimpleNamespace(task_type=task_type, gated=gated)

    assert runtime_policies(engine("classification", False)) == [
        "confidence",
        "entropy",
        "patience",
    ]
    assert "learned" in runtime_policies(engine("classification", True))
    assert runtime_policies(engine("regression", False)) == ["patience"]
    assert runtime_policies(engine("regression", True)) == ["learned", "patience"]


def test_a_run_without_a_latency_table_has_none(tmp_path):
    assert latency_rows(tmp_path) is None
