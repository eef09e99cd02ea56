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


# --- regression tasks -----------------------------------------------------------------

FILES = {"type": "files", "format": "tsv", "train": "a.tsv"}


def test_regression_defaults_to_pearson_and_keeps_a_given_metric():
    task = resolve_task("sts", {"source": FILES, "type": "regression"})
    assert task.task_type == "regression" and task.metric == "pearson"
    assert task.label_names is None
    for metric in ("spearman", "corr"):
        spec = {"source": FILES, "type": "regression", "metric": metric}
        assert resolve_task("sts", spec).metric == metric
    assert resolve_task("c", {"source": FILES, "metric": "mcc"}).metric == "mcc"


@pytest.mark.parametrize(
    ("task_type", "metric", "allowed"),
    [
        ("regression", "accuracy", "pearson, spearman, corr"),
        ("regression", "acc_and_f1", "pearson, spearman, corr"),
        ("classification", "pearson", "accuracy, macro_f1, f1, mcc, acc_and_f1"),
        ("classification", "corr", "accuracy, macro_f1, f1, mcc, acc_and_f1"),
    ],
)
def test_metric_of_the_other_task_type_is_rejected(task_type, metric, allowed):
    with pytest.raises(ConfigError) as err:
        resolve_task("my-task", {"source": FILES, "type": task_type, "metric": metric})
    message = str(err.value)
    assert "'my-task'" in message and f"{metric!r}" in message and allowed in message


def test_unknown_metric_is_left_to_metrics_module():
    assert resolve_task("t", {"source": FILES, "metric": "bleu"}).metric == "bleu"


def test_regression_rejects_label_names():
    spec = {"source": FILES, "type": "regression", "label_names": ["low", "high"]}
    with pytest.raises(ConfigError, match="`label_names`.*regression"):
        resolve_task("sts", spec)
    # an explicit null (e.g. filled in by a schema) is no label_names at all
    assert resolve_task("sts", {**spec, "label_names": None}).label_names is None


@pytest.mark.parametrize("name", builtin_task_names())
def test_builtin_cannot_become_regression(name):
    with pytest.raises(ConfigError, match="builtin") as err:
        resolve_task(name, {"type": "regression"})
    assert "'regression'" in str(err.value)
    assert resolve_task(name, {"type": "classification"}).task_type == "classification"
    with pytest.raises(ConfigError, match="'pearson'"):
        resolve_task(name, {"metric": "pearson"})


def test_unknown_type_lists_supported_types():
    with pytest.raises(ConfigError, match="supported: classification, regression"):
        resolve_task("t", {"source": FILES, "type": "ranking"})
