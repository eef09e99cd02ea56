import pytest

from early_exit.data.registry import builtin_task_names, resolve_task
from early_exit.errors import ConfigError


def test_unknown_task_names_task_and_builtins():
    with pytest.raises(ConfigError) as err:
        resolve_task("my-task", {"max_length": 32})
    assert "'my-task'" in str(err.value)
    for name in builtin_task_names():
        assert name in str(err.value)


def test_builtins_share_split_and_differ_in_field():
    news, heads = resolve_task("bbc-news", None), resolve_task("bbc-headlines", {})
    assert news.source == {"type": "bbc", "field": "article"}
    assert heads.source == {"type": "bbc", "field": "headline"}
    assert news.split == heads.split == {"dev": 0.1, "test": 0.2}
    assert news.builtin and news.task_type == "classification"


def test_builtin_overrides():
    spec = {
        "max_length": 64,
        "split": {"dev": 0.2},
        "max_examples": {"train": 50},
        "source": {"corpus_dir": "/x/bbc"},
        # generic schema defaults are tolerated
        "text_fields": ["text"],
        "label_field": "label",
        "label_names": None,
    }
    task = resolve_task("bbc-news", spec)
    assert task.max_length == 64
    assert task.split == {"dev": 0.2, "test": 0.2}
    assert task.max_examples == {"train": 50, "dev": None, "test": None}
    assert task.source == {"type": "bbc", "field": "article", "corpus_dir": "/x/bbc"}


@pytest.mark.parametrize(
    "spec",
    [
        {"source": {"type": "hf", "path": "glue"}},
        {"source": {"field": "headline"}},
        {"text_fields": ["sentence"]},
        {"label_names": ["a", "b"]},
    ],
)
def test_builtin_rejects_changing_its_data(spec):
    with pytest.raises(ConfigError, match="builtin"):
        resolve_task("bbc-news", spec)


def test_custom_task_defaults():
    task = resolve_task("t", {"source": {"type": "files", "format": "csv", "train": "a.csv"}})
    assert task.text_fields == ["text"] and task.label_field == "label"
    assert task.metric == "accuracy" and task.max_length == 128
    assert task.source["dev"] is None and task.source["test"] is None
    hf = resolve_task("h", {"source": {"type": "hf", "path": "glue", "splits": {"test": "x"}}})
    assert hf.source["splits"] == {"train": "train", "dev": None, "test": "x"}


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"type": "regression"}, "not supported"),
        ({"split": {"dev": 0.5, "test": 0.5}}, "below 1"),
        ({"split": {"dev": 0}}, r"split\.dev"),
        ({"max_length": 0}, "max_length"),
        ({"max_examples": {"train": -1}}, r"max_examples\.train"),
    ],
)
def test_invalid_values_raise_config_error(spec, match):
    with pytest.raises(ConfigError, match=match):
        resolve_task("bbc-news", spec)


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ({"type": "s3"}, "source.type"),
        ({"type": "files", "format": "xlsx", "train": "a"}, "source.format"),
        ({"type": "files", "format": "csv"}, "source.train"),
        ({"type": "hf"}, "source.path"),
    ],
)
def test_invalid_sources(source, match):
    with pytest.raises(ConfigError, match=match):
        resolve_task("t", {"source": source})


def test_text_fields_must_be_one_or_two():
    src = {"type": "files", "format": "csv", "train": "a.csv"}
    with pytest.raises(ConfigError, match="text_fields"):
        resolve_task("t", {"source": src, "text_fields": ["a", "b", "c"]})
