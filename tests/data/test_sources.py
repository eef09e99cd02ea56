import json

import pytest
from datasets import ClassLabel, Features, Value
from glue_like import NLI_FEATURES, STS_FEATURES, nli_columns

from early_exit.data.registry import SOURCE_TYPES, TaskSpec, resolve_task
from early_exit.data.sources import READERS, load_source
from early_exit.support.errors import ConfigError, DataError

SST_FEATURES = Features(
    {"sentence": Value("string"), "label": ClassLabel(names=["negative", "positive"])}
)


def hf_task(path, splits, **extra):
    source = {"type": "hf", "path": str(path), "name": None, "revision": None, "splits": splits}
    return resolve_task("t", {"source": source, "text_fields": ["sentence"], **extra})


def files_task(fmt, text_fields=("text",), label_names=None, **paths):
    source = {"type": "files", "format": fmt, **{k: str(v) for k, v in paths.items()}}
    spec = {"source": source, "text_fields": list(text_fields), "label_names": label_names}
    return resolve_task("t", spec)


# --- Hugging Face -------------------------------------------------------------------


def test_hf_local_hub_dir_uses_classlabel_names(hub_dataset):
    root = hub_dataset(
        {
            "train": {"sentence": ["good", "bad", "fine"], "label": [1, 0, 1]},
            "validation": {"sentence": ["meh", "great"], "label": [0, 1]},
        },
        SST_FEATURES,
    )
    data = load_source(hf_task(root, {"train": "train", "test": "validation"}))
    assert data.label_names == ["negative", "positive"]
    assert set(data.splits) == {"train", "test"}
    assert [(e.id, e.text, e.label) for e in data.splits["test"]] == [
        ("test-0", "meh", 0),
        ("test-1", "great", 1),
    ]
    assert data.source["path"] == str(root)


def test_hf_minus_one_labels_raise_with_hint(hub_dataset):
    root = hub_dataset(
        {
            "train": {"sentence": ["good", "bad"], "label": [1, 0]},
            "test": {"sentence": ["x", "y"], "label": [-1, -1]},
        },
        SST_FEATURES,
    )
    with pytest.raises(DataError, match="no labels") as err:
        load_source(hf_task(root, {"train": "train", "test": "test"}))
    assert "validation" in str(err.value)


def test_hf_string_labels_sorted_or_explicit(hub_dataset):
    columns = {"sentence": ["a", "b", "c"], "label": ["pos", "neg", "pos"]}
    root = hub_dataset({"train": columns})
    assert load_source(hf_task(root, {"train": "train"})).label_names == ["neg", "pos"]
    data = load_source(hf_task(root, {"train": "train"}, label_names=["pos", "neg"]))
    assert data.label_names == ["pos", "neg"]
    assert [e.label for e in data.splits["train"]] == [0, 1, 0]


def test_hf_label_names_conflicting_with_classlabel(hub_dataset):
    root = hub_dataset({"train": {"sentence": ["a", "b"], "label": [0, 1]}}, SST_FEATURES)
    with pytest.raises(ConfigError, match="ClassLabel"):
        load_source(hf_task(root, {"train": "train"}, label_names=["neg", "pos"]))


def test_hf_unknown_split_and_column(hub_dataset):
    root = hub_dataset({"train": {"sentence": ["a", "b"], "label": [0, 1]}}, SST_FEATURES)
    with pytest.raises(DataError, match=r"'validation' \(source\.splits\.test\)"):
        load_source(hf_task(root, {"train": "train", "test": "validation"}))
    task = resolve_task(
        "t",
        {"source": {"type": "hf", "path": str(root)}, "text_fields": ["premise", "hypothesis"]},
    )
    with pytest.raises(DataError, match="premise"):
        load_source(task)


def test_hf_sentence_pairs(hub_dataset):
    columns = {"premise": ["p0", "p1"], "hypothesis": ["h0", "h1"], "label": [0, 1]}
    root = hub_dataset({"train": columns})
    spec = {"source": {"type": "hf", "path": str(root)}, "text_fields": ["premise", "hypothesis"]}
    data = load_source(resolve_task("t", spec))
    ex = data.splits["train"][1]
    assert (ex.text, ex.text_pair, ex.label) == ("p1", "h1", 1)
    assert ex.to_json() == {"id": "train-1", "text": "p1", "text_pair": "h1", "label": 1}


# --- local files ----------------------------------------------------------------------


def write_rows(path, fmt, header, rows):
    if fmt == "jsonl":
        lines = [json.dumps(dict(zip(header, row, strict=True))) for row in rows]
    else:
        sep = "\t" if fmt == "tsv" else ","
        lines = [sep.join(header)] + [sep.join(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt", ["tsv", "csv", "jsonl"])
def test_files_single_text(tmp_path, fmt):
    rows = [("nice film", "pos"), ("dull", "neg"), ("ok", "pos")]
    train = write_rows(tmp_path / f"train.{fmt}", fmt, ["text", "label"], rows)
    dev = write_rows(tmp_path / f"dev.{fmt}", fmt, ["text", "label"], [("bad", "neg")])
    data = load_source(files_task(fmt, train=train, dev=dev))
    assert data.label_names == ["neg", "pos"]
    assert [(e.id, e.text, e.label) for e in data.splits["train"]] == [
        ("train-0", "nice film", 1),
        ("train-1", "dull", 0),
        ("train-2", "ok", 1),
    ]
    assert data.splits["dev"][0].id == "dev-0"
    assert data.source["sha256"].keys() == {"train", "dev"}


@pytest.mark.parametrize("fmt", ["tsv", "csv", "jsonl"])
def test_files_sentence_pairs_and_explicit_label_order(tmp_path, fmt):
    header = ["premise", "hypothesis", "label"]
    rows = [("a man", "a person", "entailment"), ("a dog", "a cat", "contradiction")]
    train = write_rows(tmp_path / f"train.{fmt}", fmt, header, rows)
    task = files_task(
        fmt, ["premise", "hypothesis"], ["entailment", "neutral", "contradiction"], train=train
    )
    data = load_source(task)
    assert data.label_names == ["entailment", "neutral", "contradiction"]
    assert [(e.text, e.text_pair, e.label) for e in data.splits["train"]] == [
        ("a man", "a person", 0),
        ("a dog", "a cat", 2),
    ]


def test_tsv_keeps_quotes_literally(tmp_path):
    train = tmp_path / "train.tsv"
    train.write_text('text\tlabel\n"quoted" start\t1\nit\'s "odd\t0\n', encoding="utf-8")
    data = load_source(files_task("tsv", train=train))
    assert [e.text for e in data.splits["train"]] == ['"quoted" start', "it's \"odd"]


def test_jsonl_integer_labels(tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text('{"text": "a", "label": 1}\n\n{"text": "b", "label": 0}\n')
    assert [e.label for e in load_source(files_task("jsonl", train=train)).splits["train"]] == [
        1,
        0,
    ]
    named = load_source(files_task("jsonl", label_names=["neg", "pos"], train=train))
    assert named.label_names == ["neg", "pos"]


@pytest.mark.parametrize(
    ("fmt", "content", "line", "match"),
    [
        ("tsv", "text\tlabel\ngood\tpos\ntoo\tmany\tcols\n", 3, "expected 2 columns"),
        ("csv", 'text,label\ngood,pos\n"a, b",pos\nlonely\n', 4, "expected 2 columns"),
        ("csv", 'text,label\ngood,pos\n"two\nlines",pos,extra\n', 3, "expected 2 columns"),
        ("tsv", "text\tlabel\ngood\tpos\n  \tneg\n", 3, "empty text"),
        ("tsv", "text\tlabel\ngood\tpos\nfine\tmaybe\n", 3, "label 'maybe' is not one of"),
        ("tsv", "text\tlabel\ngood\t1\nfine\t2\n", 3, r"label '2' is not one of .*id 0..1"),
        ("jsonl", '{"text": "a", "label": "pos"}\n{"text": "b", "label": \n', 2, "invalid JSON"),
        ("jsonl", '{"text": "a", "label": "pos"}\n\n{"label": "neg"}\n', 3, "missing field"),
        ("jsonl", '{"text": "a", "label": "pos"}\n[1, 2]\n', 2, "JSON object"),
        ("jsonl", '{"text": 5, "label": "pos"}\n', 1, "must be a string"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path, fmt, content, line, match):
    path = tmp_path / f"train.{fmt}"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=match) as err:
        load_source(files_task(fmt, label_names=["neg", "pos"], train=path))
    assert f"{path}:{line}:" in str(err.value)


def test_missing_header_column(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("sentence,label\na,pos\n")
    with pytest.raises(DataError, match=r"train\.csv:1: header has no column\(s\) \['text'\]"):
        load_source(files_task("csv", train=path))


def test_not_utf8_names_line(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes(b"text\tlabel\nok\tpos\ncaf\xe9\tneg\n")
    with pytest.raises(DataError, match=rf"{path}:3: not valid UTF-8"):
        load_source(files_task("tsv", train=path))


def test_missing_file_names_key_and_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train = write_rows(tmp_path / "train.tsv", "tsv", ["text", "label"], [("a", "pos")])
    with pytest.raises(DataError) as err:
        load_source(files_task("tsv", train=train, dev="data/dev.tsv"))
    message = str(err.value)
    assert "source.dev" in message and "data/dev.tsv" in message
    assert "current working directory" in message and str(tmp_path) in message


# --- regression ---------------------------------------------------------------------


def sts_task(source, **extra):
    spec = {"source": source, "type": "regression", "text_fields": ["sentence1", "sentence2"]}
    return resolve_task("sts", {**spec, **extra})


def sts_columns(scores, prefix="s"):
    n = len(scores)
    return {
        "sentence1": [f"{prefix}{i} a" for i in range(n)],
        "sentence2": [f"{prefix}{i} b" for i in range(n)],
        "label": scores,
    }


def test_hf_float_labels_keep_their_decimal(hub_dataset):
    root = hub_dataset(
        {"train": sts_columns([3.8, 0.0, 5.0, -1.0]), "validation": sts_columns([2.6])},
        STS_FEATURES,
    )
    data = load_source(
        sts_task({"type": "hf", "path": str(root), "splits": {"test": "validation"}})
    )
    assert data.label_names == []
    # float32 3.8 is written as 3.8, not 3.799999952316284; a lone -1 is a valid score
    assert [e.label for e in data.splits["train"]] == [3.8, 0.0, 5.0, -1.0]
    assert all(type(e.label) is float for e in data.splits["train"])
    assert data.splits["test"][0].to_json() == {
        "id": "test-0",
        "text": "s0 a",
        "text_pair": "s0 b",
        "label": 2.6,
    }


def test_hf_regression_hidden_test_split_raises(hub_dataset):
    root = hub_dataset(
        {"train": sts_columns([1.0, 2.0]), "test": sts_columns([-1.0, -1.0])}, STS_FEATURES
    )
    splits = {"train": "train", "test": "test"}
    with pytest.raises(DataError, match="no labels") as err:
        load_source(sts_task({"type": "hf", "path": str(root), "splits": splits}))
    assert "'test'" in str(err.value) and "validation" in str(err.value)


def test_hf_regression_nan_label_names_row(hub_dataset):
    root = hub_dataset({"train": sts_columns([1.0, float("nan"), 2.0])}, STS_FEATURES)
    with pytest.raises(DataError, match=r"split 'train' row 1: label nan is not a finite"):
        load_source(sts_task({"type": "hf", "path": str(root)}))


def test_hf_regression_on_classlabel_is_a_config_error(hub_dataset):
    root = hub_dataset({"train": {"sentence": ["a", "b"], "label": [0, 1]}}, SST_FEATURES)
    task = resolve_task(
        "t",
        {
            "source": {"type": "hf", "path": str(root)},
            "type": "regression",
            "text_fields": ["sentence"],
        },
    )
    with pytest.raises(ConfigError, match="ClassLabel"):
        load_source(task)


@pytest.mark.parametrize("fmt", ["tsv", "csv", "jsonl"])
def test_files_regression_labels_are_floats(tmp_path, fmt):
    rows = [("a", "b", "3.8"), ("c", "d", " 0 "), ("e", "f", "5.000"), ("g", "h", "-0.25")]
    header = ["sentence1", "sentence2", "label"]
    train = write_rows(tmp_path / f"train.{fmt}", fmt, header, rows)
    data = load_source(sts_task({"type": "files", "format": fmt, "train": str(train)}))
    assert data.label_names == []
    assert [e.label for e in data.splits["train"]] == [3.8, 0.0, 5.0, -0.25]
    assert data.splits["train"][0].to_json()["label"] == 3.8


def test_jsonl_regression_accepts_numbers(tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text('{"text": "a", "label": 4}\n{"text": "b", "label": 0.5}\n')
    task = resolve_task(
        "t",
        {"source": {"type": "files", "format": "jsonl", "train": str(train)}, "type": "regression"},
    )
    labels = [e.label for e in load_source(task).splits["train"]]
    assert labels == [4.0, 0.5] and all(type(v) is float for v in labels)


@pytest.mark.parametrize(
    ("fmt", "content", "line", "match"),
    [
        ("tsv", "text\tlabel\ngood\t1.5\nfine\thigh\n", 3, "label 'high' is not a number"),
        ("csv", "text,label\ngood,1.5\nfine,nan\n", 3, "label 'nan' is not a finite number"),
        ("csv", "text,label\ngood,-inf\n", 2, "not a finite number"),
        ("tsv", "text\tlabel\ngood\t1,5\n", 2, "not a number"),
        ("jsonl", '{"text": "a", "label": 1.5}\n{"text": "b", "label": NaN}\n', 2, "finite"),
        ("jsonl", '{"text": "a", "label": Infinity}\n', 1, "finite"),
        ("jsonl", '{"text": "a", "label": "x"}\n', 1, "not a number"),
        ("jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": true}\n', 2, "a number"),
        ("jsonl", '{"text": "a", "label": [1.0]}\n', 1, "must be a number"),
    ],
)
def test_regression_bad_label_names_file_and_line(tmp_path, fmt, content, line, match):
    path = tmp_path / f"train.{fmt}"
    path.write_text(content, encoding="utf-8")
    task = resolve_task(
        "t", {"source": {"type": "files", "format": fmt, "train": str(path)}, "type": "regression"}
    )
    with pytest.raises(DataError, match=match) as err:
        load_source(task)
    assert f"{path}:{line}:" in str(err.value)


def test_classification_jsonl_still_rejects_float_labels(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "a", "label": 0.5}\n')
    with pytest.raises(DataError, match=rf"{path}:1: label must be a string or an integer"):
        load_source(files_task("jsonl", train=path))


# --- extra evaluation splits, skip_unlabeled, local_copy ------------------------------


def nli_task(source, **extra):
    return resolve_task(
        "nli", {"source": source, "text_fields": ["premise", "hypothesis"], **extra}
    )


MNLI_SPLITS = {
    "train": "train",
    "test": "validation_matched",
    "test_mismatched": "validation_mismatched",
}


def test_hf_extra_split_is_read_like_test(hub_dataset):
    root = hub_dataset(
        {
            "train": nli_columns([0, 1, 2, 0], "tr"),
            "validation_matched": nli_columns([1, 2], "m"),
            "validation_mismatched": nli_columns([2, 0, 1], "mm"),
        },
        NLI_FEATURES,
    )
    data = load_source(nli_task({"type": "hf", "path": str(root), "splits": MNLI_SPLITS}))
    assert set(data.splits) == {"train", "test", "test_mismatched"}  # dev is carved later
    assert [(e.id, e.text, e.text_pair, e.label) for e in data.splits["test_mismatched"]] == [
        ("test_mismatched-0", "mm p0", "mm h0", 2),
        ("test_mismatched-1", "mm p1", "mm h1", 0),
        ("test_mismatched-2", "mm p2", "mm h2", 1),
    ]
    assert data.source["splits"]["test_mismatched"] == "validation_mismatched"
    assert data.dropped_unlabeled is None


def test_hf_missing_extra_split_names_its_key(hub_dataset):
    root = hub_dataset({"train": nli_columns([0, 1], "tr")}, NLI_FEATURES)
    splits = {"train": "train", "test_mismatched": "validation_mismatched"}
    with pytest.raises(DataError, match=r"\(source\.splits\.test_mismatched\)"):
        load_source(nli_task({"type": "hf", "path": str(root), "splits": splits}))


def test_files_extra_split(tmp_path):
    header = ["text", "label"]
    train = write_rows(tmp_path / "train.tsv", "tsv", header, [("a", "pos"), ("b", "neg")])
    extra = write_rows(tmp_path / "mm.tsv", "tsv", header, [("c", "neg")])
    source = {"type": "files", "format": "tsv", "train": str(train), "test_mm": str(extra)}
    data = load_source(resolve_task("t", {"source": source}))
    assert set(data.splits) == {"train", "test_mm"}
    assert [(e.id, e.text, e.label) for e in data.splits["test_mm"]] == [("test_mm-0", "c", 0)]
    assert data.source["test_mm"] == str(extra.resolve())
    assert data.source["sha256"].keys() == {"train", "test_mm"}
    missing = {**source, "test_mm": str(tmp_path / "nope.tsv")}
    with pytest.raises(DataError, match=r"source\.test_mm file not found"):
        load_source(resolve_task("t", {"source": missing}))


SNLI_SPLITS = {"train": "train", "dev": "validation", "test": "test"}


def snli_dataset(make):
    return make(
        {
            "train": nli_columns([0, -1, 1, 2, -1, 0], "tr"),
            "validation": nli_columns([1, 2, 0], "va"),
            "test": nli_columns([-1, 2, 1], "te"),
        },
        NLI_FEATURES,
    )


def test_skip_unlabeled_drops_minus_one_rows(hub_dataset, caplog):
    root = snli_dataset(hub_dataset)
    source = {"type": "hf", "path": str(root), "splits": SNLI_SPLITS, "skip_unlabeled": True}
    with caplog.at_level("INFO", logger="early_exit.data.sources"):
        data = load_source(nli_task(source))
    assert data.dropped_unlabeled == {"train": 2, "dev": 0, "test": 1}
    # ids keep the row of the source split
    assert [e.id for e in data.splits["train"]] == ["train-0", "train-2", "train-3", "train-5"]
    assert [(e.id, e.text, e.label) for e in data.splits["test"]] == [
        ("test-1", "te p1", 2),
        ("test-2", "te p2", 1),
    ]
    assert all(e.label != -1 for s in data.splits.values() for e in s)
    assert data.source["skip_unlabeled"] is True
    assert "dropped 2 of 6 rows" in caplog.text and "dropped 1 of 3 rows" in caplog.text


def test_without_skip_unlabeled_minus_one_is_still_an_error(hub_dataset):
    root = snli_dataset(hub_dataset)
    with pytest.raises(DataError, match="no labels") as err:
        load_source(nli_task({"type": "hf", "path": str(root), "splits": SNLI_SPLITS}))
    assert "split 'train'" in str(err.value) and "skip_unlabeled" in str(err.value)


def test_skip_unlabeled_on_a_hidden_split_is_an_error(hub_dataset):
    root = hub_dataset(
        {"train": nli_columns([0, 1, 2], "tr"), "test": nli_columns([-1, -1], "te")},
        NLI_FEATURES,
    )
    splits = {"train": "train", "test": "test"}
    source = {"type": "hf", "path": str(root), "splits": splits, "skip_unlabeled": True}
    with pytest.raises(DataError, match=r"split 'test' \(source\.splits\.test\) is empty"):
        load_source(nli_task(source))


def test_local_copy_gives_the_same_examples_as_load_dataset(hub_dataset, saved_dataset):
    splits = {
        "train": nli_columns([0, 1, 2, -1], "tr"),
        "validation_matched": nli_columns([1, 2], "m"),
        "validation_mismatched": nli_columns([2, -1, 0], "mm"),
    }
    hub = hub_dataset(splits, NLI_FEATURES)
    saved = saved_dataset(splits, NLI_FEATURES)
    source = {"type": "hf", "path": "nyu-mll/multi_nli", "splits": MNLI_SPLITS}
    source["skip_unlabeled"] = True
    from_copy = load_source(nli_task({**source, "local_copy": str(saved)}))
    from_hub = load_source(nli_task({**source, "path": str(hub)}))
    assert from_copy.splits == from_hub.splits
    assert [e.id for e in from_copy.splits["test_mismatched"]] == [
        "test_mismatched-0",
        "test_mismatched-2",
    ]
    assert from_copy.label_names == from_hub.label_names == NLI_FEATURES["label"].names
    assert from_copy.dropped_unlabeled == from_hub.dropped_unlabeled
    assert from_copy.dropped_unlabeled == {"train": 1, "test": 0, "test_mismatched": 1}
    assert from_copy.source["local_copy"] == str(saved.resolve())


def test_local_copy_regression_labels_and_hidden_test(saved_dataset):
    saved = saved_dataset(
        {"train": sts_columns([3.8, 0.0, 5.0]), "test": sts_columns([-1.0, -1.0])},
        STS_FEATURES,
    )
    source = {"type": "hf", "path": "glue", "name": "stsb", "local_copy": str(saved)}
    data = load_source(sts_task(source))
    assert [e.label for e in data.splits["train"]] == [3.8, 0.0, 5.0]
    with pytest.raises(DataError, match="no labels"):
        load_source(sts_task({**source, "splits": {"train": "train", "test": "test"}}))


def test_missing_local_copy_says_to_download(tmp_path):
    copy_dir = tmp_path / "hub" / "datasets" / "glue--mnli"
    source = {"type": "hf", "path": "glue", "name": "mnli", "local_copy": str(copy_dir)}
    with pytest.raises(DataError) as err:
        load_source(nli_task(source))
    assert str(err.value) == (
        f"task 'nli': the local copy {copy_dir} of Hugging Face dataset glue/mnli is missing: "
        "run the download step first (`snakemake download --cores 1`, on a machine with internet)"
    )


def test_local_copy_without_the_split_lists_its_splits(saved_dataset):
    saved = saved_dataset(
        {"train": nli_columns([0, 1], "tr"), "validation_matched": nli_columns([1], "m")},
        NLI_FEATURES,
    )
    source = {"type": "hf", "path": "glue", "local_copy": str(saved), "splits": MNLI_SPLITS}
    with pytest.raises(DataError) as err:
        load_source(nli_task(source))
    message = str(err.value)
    assert "has no split 'validation_mismatched' (source.splits.test_mismatched)" in message
    assert message.endswith("it has: train, validation_matched")


def test_local_copy_that_is_not_a_saved_dataset_dict(tmp_path):
    import datasets

    not_saved = tmp_path / "empty"
    not_saved.mkdir()
    source = {"type": "hf", "path": "glue", "local_copy": str(not_saved)}
    with pytest.raises(DataError, match="cannot be read .*download step again"):
        load_source(nli_task(source))
    single = tmp_path / "single"
    datasets.Dataset.from_dict(nli_columns([0, 1], "tr")).save_to_disk(str(single))
    with pytest.raises(DataError, match="single Dataset, not a DatasetDict"):
        load_source(nli_task({**source, "local_copy": str(single)}))


@pytest.mark.parametrize("fmt", ["tsv", "csv"])
def test_a_stray_label_value_is_named_with_file_and_line(tmp_path, fmt):
    # 0/1 labels with one row saying "positive": not a third class
    rows = [(f"text {i}", str(i % 2)) for i in range(20)]
    rows.insert(7, ("a stray row", "positive"))
    path = write_rows(tmp_path / f"train.{fmt}", fmt, ["text", "label"], rows)
    with pytest.raises(DataError, match="label 'positive' differs in kind") as err:
        load_source(files_task(fmt, train=path))
    assert f"{path}:9:" in str(err.value)  # header + 7 rows before it
    assert "20 of 21 labels are integers, e.g. '0'" in str(err.value)


def test_integer_cells_are_ids_into_declared_label_names(tmp_path):
    path = write_rows(tmp_path / "train.tsv", "tsv", ["text", "label"], [("a", "1"), ("b", "0")])
    data = load_source(files_task("tsv", label_names=["neg", "pos"], train=path))
    assert [e.label for e in data.splits["train"]] == [1, 0]


# --- the readers' registry ------------------------------------------------------------


def test_every_source_type_the_config_accepts_has_a_reader():
    assert tuple(READERS) == SOURCE_TYPES


def test_an_unknown_source_type_is_the_config_error_resolve_task_gives():
    with pytest.raises(ConfigError, match="source.type 's3' is not one of") as from_config:
        resolve_task("t", {"source": {"type": "s3"}})
    with pytest.raises(ConfigError) as from_reader:
        load_source(TaskSpec(name="t", source={"type": "s3"}))  # built without resolve_task
    assert str(from_reader.value) == str(from_config.value)
