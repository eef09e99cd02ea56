import json

import pytest

from early_exit.data.prepare import prepare_task
from early_exit.data.prepared import eval_splits, load_manifest, load_split
from early_exit.data.registry import SPLITS
from early_exit.support.errors import DataError


@pytest.fixture
def prepared(fake_bbc, tmp_path):
    out = tmp_path / "bbc"
    prepare_task("bbc-news", {"source": {"corpus_dir": str(fake_bbc)}}, out, seed=0)
    return out


def test_round_trip(prepared):
    records = load_split(prepared, "dev")
    assert len(records) == load_manifest(prepared)["splits"]["dev"]["size"]
    assert set(records[0]) == {"id", "text", "label"}


def test_edited_split_is_detected(prepared):
    path = prepared / "train.jsonl"
    path.write_text(path.read_text().replace('"label": 0', '"label": 1', 1))
    with pytest.raises(DataError, match="sha256") as err:
        load_split(prepared, "train")
    assert str(path) in str(err.value)


def test_invalid_json_line_names_file_and_line(prepared):
    from early_exit.support.atomic import sha256_file

    path = prepared / "test.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = lines[1][:-5] + "\n"
    path.write_text("".join(lines))
    manifest = json.loads((prepared / "manifest.json").read_text())
    manifest["splits"]["test"]["sha256"] = sha256_file(path)  # checksum passes, JSON does not
    (prepared / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=rf"{path}:2: invalid JSON"):
        load_split(prepared, "test")


def test_missing_or_invalid_manifest(prepared):
    manifest = prepared / "manifest.json"
    manifest.write_text("{not json")
    with pytest.raises(DataError, match="rerun rule prepare_data"):
        load_manifest(prepared)
    manifest.write_text('{"task": "x"}')
    with pytest.raises(DataError, match="not a prepared-data manifest"):
        load_manifest(prepared)
    manifest.unlink()
    with pytest.raises(DataError, match="rerun rule prepare_data"):
        load_split(prepared, "train")


def test_unknown_split_name(prepared):
    with pytest.raises(ValueError, match="unknown split"):
        load_split(prepared, "validation")


@pytest.fixture
def prepared_regression(tmp_path):
    rows = [{"text": f"t{i}", "label": i / 4} for i in range(40)]
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {"source": {"type": "files", "format": "jsonl", "train": str(train)}}
    out = tmp_path / "sts"
    prepare_task("sts", {**spec, "type": "regression"}, out, seed=0)
    return out


def rewrite_with_checksum(prepared, split, text):
    from early_exit.support.atomic import sha256_file

    path = prepared / f"{split}.jsonl"
    path.write_text(text)
    manifest = json.loads((prepared / "manifest.json").read_text())
    manifest["splits"][split]["sha256"] = sha256_file(path)
    (prepared / "manifest.json").write_text(json.dumps(manifest))
    return path


def test_regression_round_trip_gives_floats(prepared_regression):
    records = [r for s in SPLITS for r in load_split(prepared_regression, s)]
    assert len(records) == 40
    assert all(type(r["label"]) is float for r in records)
    assert {r["text"]: r["label"] for r in records}["t4"] == 1.0
    assert '"label": 1.0}' in "".join(
        (prepared_regression / f"{s}.jsonl").read_text() for s in SPLITS
    )


def test_regression_integer_label_read_back_as_float(prepared_regression):
    rewrite_with_checksum(prepared_regression, "dev", '{"id": "x", "text": "t", "label": 4}\n')
    assert load_split(prepared_regression, "dev") == [{"id": "x", "text": "t", "label": 4.0}]
    assert type(load_split(prepared_regression, "dev")[0]["label"]) is float


def test_regression_non_numeric_label_in_prepared_file(prepared_regression):
    path = rewrite_with_checksum(
        prepared_regression,
        "dev",
        '{"id": "x", "text": "t", "label": 1.0}\n{"id": "y", "text": "u", "label": "high"}\n',
    )
    with pytest.raises(DataError, match=rf"{path}:2: regression label 'high'"):
        load_split(prepared_regression, "dev")


def test_manifest_with_unknown_task_type_is_rejected(prepared_regression):
    manifest = json.loads((prepared_regression / "manifest.json").read_text())
    manifest["task_type"] = "ranking"
    (prepared_regression / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="not a prepared-data manifest"):
        load_manifest(prepared_regression)


# --- extra evaluation splits ----------------------------------------------------------


@pytest.fixture
def prepared_extra(tmp_path):
    def write(name, rows):
        path = tmp_path / name
        path.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows))
        return str(path)

    source = {"type": "files", "format": "jsonl"}
    source["train"] = write("train.jsonl", [(f"t{i}", i % 2) for i in range(30)])
    source["test_mm"] = write("mm.jsonl", [("m0", 0), ("m1", 1)])
    out = tmp_path / "extra"
    prepare_task("extra", {"source": source}, out, seed=0)
    return out


def test_extra_split_round_trip(prepared_extra):
    manifest = load_manifest(prepared_extra)
    assert eval_splits(manifest) == ["dev", "test", "test_mm"]
    assert load_split(prepared_extra, "test_mm") == [
        {"id": "test_mm-0", "text": "m0", "label": 0},
        {"id": "test_mm-1", "text": "m1", "label": 1},
    ]


def test_extra_split_not_in_manifest(prepared):
    with pytest.raises(DataError, match=r"lists no split 'test_mm' \(splits: train, dev, test\)"):
        load_split(prepared, "test_mm")
    with pytest.raises(ValueError, match="test_<suffix>"):
        load_split(prepared, "test-mm")


def test_edited_extra_split_is_detected(prepared_extra):
    path = prepared_extra / "test_mm.jsonl"
    path.write_text(path.read_text().replace('"label": 0', '"label": 1'))
    with pytest.raises(DataError, match="sha256"):
        load_split(prepared_extra, "test_mm")


def test_manifest_without_eval_splits_means_dev_and_test(prepared):
    path = prepared / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["eval_splits"]  # written before the key existed
    path.write_text(json.dumps(manifest))
    assert eval_splits(load_manifest(prepared)) == ["dev", "test"]
    assert len(load_split(prepared, "test")) == manifest["splits"]["test"]["size"]


@pytest.mark.parametrize(
    "listed", [["dev", "test", "test_mm"], ["test", "dev"], ["dev", "test", "Test-X"], "dev"]
)
def test_manifest_with_bad_eval_splits_is_rejected(prepared, listed):
    path = prepared / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["eval_splits"] = listed  # test_mm: listed without an entry in `splits`
    path.write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="not a prepared-data manifest"):
        load_manifest(prepared)
