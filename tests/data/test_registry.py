import pytest

from early_exit.data.registry import builtin_task_names, resolve_task
from early_exit.support.errors import ConfigError


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


# --- extra evaluation splits, skip_unlabeled, local_copy ------------------------------

MNLI_SPLITS = {
    "train": "train",
    "test": "validation_matched",
    "test_mismatched": "validation_mismatched",
}


def test_hf_extra_split_is_an_eval_split():
    task = resolve_task("mnli", {"source": {"type": "hf", "path": "glue", "splits": MNLI_SPLITS}})
    assert task.eval_splits == ("dev", "test", "test_mismatched")
    assert task.splits == ("train", "dev", "test", "test_mismatched")
    assert task.source["splits"] == {**MNLI_SPLITS, "dev": None}
    assert list(task.source["splits"]) == ["train", "dev", "test", "test_mismatched"]
    assert task.max_examples == {"train": None, "dev": None, "test": None, "test_mismatched": None}
    assert "skip_unlabeled" not in task.source and "local_copy" not in task.source


def test_extra_splits_keep_config_order_and_null_ones_do_not_exist():
    splits = {"test_b": "vb", "test_a2": "va", "test_c": None}
    task = resolve_task("h", {"source": {"type": "hf", "path": "p", "splits": splits}})
    assert task.eval_splits == ("dev", "test", "test_b", "test_a2")
    assert "test_c" not in task.source["splits"]
    source = {"type": "files", "format": "tsv", "train": "a.tsv", "test_mm": "mm.tsv"}
    task = resolve_task("f", {"source": {**source, "test_x": None}})
    assert task.eval_splits == ("dev", "test", "test_mm")
    assert task.source["test_mm"] == "mm.tsv" and "test_x" not in task.source


def test_builtin_and_plain_tasks_have_dev_and_test():
    assert resolve_task("bbc-news", None).eval_splits == ("dev", "test")
    assert resolve_task("t", {"source": FILES}).eval_splits == ("dev", "test")


@pytest.mark.parametrize(
    "key", ["validation_mismatched", "test-mm", "Test_MM", "test_", "test_mm!", "testmm"]
)
def test_bad_extra_split_name_is_a_config_error(key):
    with pytest.raises(ConfigError, match="test_<suffix>") as err:
        resolve_task("t", {"source": {"type": "hf", "path": "p", "splits": {key: "x"}}})
    assert repr(key) in str(err.value)
    with pytest.raises(ConfigError, match="test_<suffix>") as err:
        resolve_task("t", {"source": {**FILES, key: "x.tsv"}})
    assert f"source.{key}" in str(err.value)


def test_hf_extra_split_outside_splits_is_rejected_with_a_hint():
    with pytest.raises(ConfigError, match=r"source\.test_mm .*under source\.splits"):
        resolve_task("t", {"source": {"type": "hf", "path": "p", "test_mm": "validation"}})


def test_unknown_source_keys_name_the_key():
    with pytest.raises(ConfigError, match=r"source\.splits for a files source"):
        resolve_task("t", {"source": {**FILES, "splits": {"test": "x"}}})
    with pytest.raises(ConfigError, match=r"source\.local_copy for a files source"):
        resolve_task("t", {"source": {**FILES, "local_copy": "d"}})
    # a null value (e.g. filled in by a schema) is no value at all
    assert resolve_task("t", {"source": {**FILES, "corpus_dir": None}}).eval_splits == (
        "dev",
        "test",
    )


def test_max_examples_for_an_extra_split():
    source = {"type": "hf", "path": "glue", "splits": MNLI_SPLITS}
    task = resolve_task("mnli", {"source": source, "max_examples": {"test_mismatched": 5}})
    assert task.max_examples["test_mismatched"] == 5
    with pytest.raises(ConfigError, match=r"max_examples\.test_other .*does not declare"):
        resolve_task("mnli", {"source": source, "max_examples": {"test_other": 5}})
    with pytest.raises(ConfigError, match="`max_examples`"):
        resolve_task("mnli", {"source": source, "max_examples": {"validation": 5}})
    with pytest.raises(ConfigError, match=r"max_examples\.test_mismatched must be a positive"):
        resolve_task("mnli", {"source": source, "max_examples": {"test_mismatched": 0}})


def test_skip_unlabeled_option():
    source = {"type": "hf", "path": "snli", "skip_unlabeled": True}
    assert resolve_task("snli", {"source": source}).source["skip_unlabeled"] is True
    off = resolve_task("snli", {"source": {**source, "skip_unlabeled": False}})
    assert "skip_unlabeled" not in off.source  # the same source as without the option
    with pytest.raises(ConfigError, match="true or false"):
        resolve_task("snli", {"source": {**source, "skip_unlabeled": "yes"}})
    with pytest.raises(ConfigError, match="only for classification"):
        resolve_task("sts", {"source": source, "type": "regression"})
    with pytest.raises(ConfigError, match=r"source\.skip_unlabeled for a files source"):
        resolve_task("t", {"source": {**FILES, "skip_unlabeled": True}})


def test_local_copy_is_kept_and_not_checked_on_disk():
    source = {"type": "hf", "path": "glue", "name": "mnli", "local_copy": "data/hub//x/"}
    task = resolve_task("mnli", {"source": source})
    assert task.source["local_copy"] == "data/hub/x"  # no existence check: not downloaded yet
    with pytest.raises(ConfigError, match=r"source\.local_copy"):
        resolve_task("mnli", {"source": {**source, "local_copy": ""}})
