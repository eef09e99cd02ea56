import json

import pytest

from early_exit.data import load_manifest, load_split, prepare_task
from early_exit.errors import DataError


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
    from early_exit.atomic import sha256_file

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
    with pytest.raises(DataError, match="rerun the data stage"):
        load_manifest(prepared)
    manifest.write_text('{"task": "x"}')
    with pytest.raises(DataError, match="not a prepared-data manifest"):
        load_manifest(prepared)
    manifest.unlink()
    with pytest.raises(DataError, match="rerun the data stage"):
        load_split(prepared, "train")


def test_unknown_split_name(prepared):
    with pytest.raises(ValueError, match="unknown split"):
        load_split(prepared, "validation")
