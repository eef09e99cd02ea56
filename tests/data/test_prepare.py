import json
from collections import Counter

import pytest
from datasets import ClassLabel, Features, Value
from glue_like import NLI_FEATURES, STS_FEATURES, nli_columns

import early_exit.data.prepare as prepare_module
from early_exit.data.prepare import prepare_task
from early_exit.data.prepared import load_manifest, load_split
from early_exit.data.registry import SPLITS
from early_exit.support.errors import ConfigError, DataError


def bbc(corpus, **extra):
    return {"source": {"corpus_dir": str(corpus)}, **extra}


def ids(out, split):
    return [r["id"] for r in load_split(out, split)]


def test_bbc_outputs_and_manifest(fake_bbc, tmp_path):
    (fake_bbc / "tech" / "090.txt").write_text("Tech headline 1\nBody of tech story 1.  More text.")
    (fake_bbc / "sport" / "090.txt").write_bytes("Caf\u00e9 \u00a35\n\nbody".encode("cp1252"))
    out = tmp_path / "out"
    manifest = prepare_task("bbc-news", bbc(fake_bbc, max_length=64), out, seed=13)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["dev.jsonl", "manifest.json", "test.jsonl", "train.jsonl"]
    assert manifest == load_manifest(out)
    assert manifest["task"] == "bbc-news" and manifest["max_length"] == 64
    assert manifest["label_names"] == ["business", "sport", "tech"]
    assert manifest["text_fields"] == ["text"]
    assert manifest["dropped_duplicates"] == 1  # tech/090 repeats tech/001 up to whitespace
    assert manifest["decoding_fallbacks"] == ["sport/090.txt"]
    assert manifest["seed"] == 13 and manifest["task_type"] == "classification"
    sizes = {s: manifest["splits"][s]["size"] for s in SPLITS}
    assert sizes == {"train": 43, "dev": 6, "test": 12}  # 61 docs, 70/10/20
    records = {s: load_split(out, s) for s in SPLITS}
    all_ids = [r["id"] for s in SPLITS for r in records[s]]
    assert len(all_ids) == len(set(all_ids)) == 61  # disjoint, nothing lost
    assert "tech/090" not in all_ids and "sport/090" in all_ids
    for split in SPLITS:  # stratified: every label in every split
        counts = Counter(r["label"] for r in records[split])
        assert set(counts) == {0, 1, 2}
        assert manifest["splits"][split]["label_counts"] == {
            name: counts[i] for i, name in enumerate(manifest["label_names"])
        }
    first = json.loads((out / "train.jsonl").read_text().splitlines()[0])
    assert list(first) == ["id", "text", "label"]


def test_same_seed_byte_identical_and_other_seed_differs(fake_bbc, tmp_path):
    for name, seed in [("a", 7), ("b", 7), ("c", 8)]:
        prepare_task("bbc-news", bbc(fake_bbc), tmp_path / name, seed=seed)
    for split in SPLITS:
        assert (tmp_path / "a" / f"{split}.jsonl").read_bytes() == (
            tmp_path / "b" / f"{split}.jsonl"
        ).read_bytes()
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (
        tmp_path / "b" / "manifest.json"
    ).read_bytes()
    assert ids(tmp_path / "a", "test") != ids(tmp_path / "c", "test")


def test_headlines_share_document_splits_with_articles(fake_bbc, tmp_path):
    prepare_task("bbc-news", bbc(fake_bbc), tmp_path / "news", seed=3)
    prepare_task("bbc-headlines", bbc(fake_bbc), tmp_path / "heads", seed=3)
    for split in SPLITS:
        assert ids(tmp_path / "news", split) == ids(tmp_path / "heads", split)
    for record in load_split(tmp_path / "heads", "train"):
        class_name, number = record["id"].split("/")
        assert record["text"] == f"{class_name.title()} headline {int(number)}"


def test_max_examples_subsamples_stratified(fake_bbc, tmp_path):
    spec = bbc(fake_bbc, max_examples={"train": 9, "dev": None, "test": 6})
    manifest = prepare_task("bbc-news", spec, tmp_path / "o", seed=1)
    assert [manifest["splits"][s]["size"] for s in SPLITS] == [9, 6, 6]
    assert set(manifest["splits"]["train"]["label_counts"].values()) == {3}


def test_hf_task_carves_dev_from_train(hub_dataset, tmp_path):
    features = Features({"sentence": Value("string"), "label": ClassLabel(names=["neg", "pos"])})
    train = {"sentence": [f"s{i}" for i in range(40)], "label": [i % 2 for i in range(40)]}
    train["sentence"][39] = "s1"  # duplicate of row 1 (same label) is dropped before carving
    validation = {"sentence": ["v0", "v1"], "label": [0, 1]}
    root = hub_dataset({"train": train, "validation": validation}, features)
    splits = {"train": "train", "test": "validation"}
    spec = {
        "source": {"type": "hf", "path": str(root), "splits": splits},
        "text_fields": ["sentence"],
        "split": {"dev": 0.1, "test": 0.2},
    }
    manifest = prepare_task("my-sst2", spec, tmp_path / "o", seed=0)
    assert [manifest["splits"][s]["size"] for s in SPLITS] == [35, 4, 2]
    assert manifest["dropped_duplicates"] == 1
    assert manifest["label_names"] == ["neg", "pos"]
    assert ids(tmp_path / "o", "test") == ["test-0", "test-1"]
    assert all(i.startswith("train-") for i in ids(tmp_path / "o", "dev"))


def test_files_pair_task_all_splits_given(tmp_path):
    for split, n in [("train", 6), ("dev", 2), ("test", 2)]:
        lines = ["p\th\tlabel"] + [f"p{i}\th{i}\t{'yes' if i % 2 else 'no'}" for i in range(n)]
        (tmp_path / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    source = {"type": "files", "format": "tsv"}
    source.update({s: str(tmp_path / f"{s}.tsv") for s in SPLITS})
    spec = {"source": source, "text_fields": ["p", "h"]}
    manifest = prepare_task("pairs", spec, tmp_path / "o", seed=0)
    assert manifest["text_fields"] == ["text", "text_pair"]
    assert manifest["dropped_duplicates"] == 0
    assert load_split(tmp_path / "o", "dev") == [
        {"id": "dev-0", "text": "p0", "text_pair": "h0", "label": 0},
        {"id": "dev-1", "text": "p1", "text_pair": "h1", "label": 1},
    ]


def test_unknown_task(tmp_path):
    with pytest.raises(ConfigError, match="bbc-news"):
        prepare_task("sst2", {}, tmp_path / "o", seed=0)


def test_failure_midway_leaves_no_manifest(fake_bbc, tmp_path, monkeypatch):
    out = tmp_path / "o"
    prepare_task("bbc-news", bbc(fake_bbc), out, seed=0)  # an earlier complete run
    real_write_text = prepare_module.write_text

    def failing(path, text):
        if path.name == "test.jsonl":
            raise OSError("disk full")
        real_write_text(path, text)

    monkeypatch.setattr(prepare_module, "write_text", failing)
    with pytest.raises(OSError, match="disk full"):
        prepare_task("bbc-news", bbc(fake_bbc), out, seed=1)
    assert not (out / "manifest.json").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left
    monkeypatch.undo()
    prepare_task("bbc-news", bbc(fake_bbc), out, seed=1)  # a rerun completes
    assert load_manifest(out)["seed"] == 1


def test_interrupted_inside_atomic_write_leaves_no_partial_file(fake_bbc, tmp_path, monkeypatch):
    import early_exit.support.atomic as atomic

    def exploding_replace(src, dst):
        raise RuntimeError("killed")

    monkeypatch.setattr(atomic.os, "replace", exploding_replace)
    with pytest.raises(RuntimeError, match="killed"):
        prepare_task("bbc-news", bbc(fake_bbc), tmp_path / "o", seed=0)
    assert list((tmp_path / "o").iterdir()) == []


def test_real_bbc_tasks(tmp_path):
    sizes = {}
    for task in ("bbc-news", "bbc-headlines"):
        manifest = prepare_task(task, {}, tmp_path / task, seed=13)
        assert manifest["dropped_duplicates"] == 100
        assert manifest["decoding_fallbacks"] == ["sports/199.txt"]
        sizes[task] = [manifest["splits"][s]["size"] for s in SPLITS]
    assert sizes["bbc-news"] == sizes["bbc-headlines"] == [1488, 212, 425]
    for split in SPLITS:
        assert ids(tmp_path / "bbc-news", split) == ids(tmp_path / "bbc-headlines", split)


# --- regression -----------------------------------------------------------------------


def sts_scores(n, seed=0):
    """Scores in [0, 5] with two decimals, skewed towards low similarity."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return [round(float(min(s, 5.0)), 2) for s in rng.exponential(1.5, size=n)]


def write_sts_tsv(path, scores, start=0):
    lines = ["sentence1\tsentence2\tscore"]
    lines += [f"first {i}\tsecond {i}\t{s}" for i, s in enumerate(scores, start=start)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sts_spec(source, **extra):
    spec = {"source": source, "type": "regression", "text_fields": ["sentence1", "sentence2"]}
    return {**spec, "label_field": "score", **extra}


def expected_stats(labels):
    import numpy as np

    values = np.array(labels)
    return {"mean": values.mean(), "std": values.std(), "min": values.min(), "max": values.max()}


def test_regression_files_tsv_manifest_and_float_labels(tmp_path):
    scores = sts_scores(200)
    train = write_sts_tsv(tmp_path / "train.tsv", scores)
    with train.open("a", encoding="utf-8") as fh:  # same pair, other score: conflicting
        fh.write("first 0\tsecond 0\t4.75\nfirst 1\tsecond  1\t" + str(scores[1]) + "\n")
    spec = sts_spec({"type": "files", "format": "tsv", "train": str(train)})
    out = tmp_path / "o"
    manifest = prepare_task("sts", spec, out, seed=13)
    assert manifest == load_manifest(out)
    assert manifest["task_type"] == "regression" and manifest["metric"] == "pearson"
    assert manifest["label_names"] == []
    assert manifest["text_fields"] == ["text", "text_pair"]
    assert manifest["dropped_duplicates"] == 3  # both copies of pair 0, the copy of pair 1
    assert [manifest["splits"][s]["size"] for s in SPLITS] == [139, 20, 40]  # 199 left
    pool_mean = sum(scores[1:]) / 199
    for split in SPLITS:
        info = manifest["splits"][split]
        assert set(info) == {"size", "sha256", "label_stats"}
        labels = [r["label"] for r in load_split(out, split)]
        assert all(type(v) is float for v in labels)
        assert info["label_stats"] == pytest.approx(expected_stats(labels), abs=1e-12)
        assert abs(info["label_stats"]["mean"] - pool_mean) < 0.15
    by_id = {r["id"]: r["label"] for s in SPLITS for r in load_split(out, s)}
    assert "train-0" not in by_id
    assert by_id == {f"train-{i}": scores[i] for i in range(1, 200)}  # labels round-trip
    for split in SPLITS:  # written as JSON floats (5.0, not 5), as the contract says
        for line in (out / f"{split}.jsonl").read_text().splitlines():
            assert isinstance(json.loads(line)["label"], float)
            assert "." in line.rsplit('"label": ', 1)[1]


def test_regression_same_seed_byte_identical(tmp_path):
    train = write_sts_tsv(tmp_path / "train.tsv", sts_scores(100))
    spec = sts_spec({"type": "files", "format": "tsv", "train": str(train)})
    for name, seed in [("a", 5), ("b", 5), ("c", 6)]:
        prepare_task("sts", spec, tmp_path / name, seed=seed)
    for name in ("train.jsonl", "dev.jsonl", "test.jsonl", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert ids(tmp_path / "a", "test") != ids(tmp_path / "c", "test")


def test_regression_jsonl_all_splits_and_max_examples(tmp_path):
    source = {"type": "files", "format": "jsonl"}
    for split, n in [("train", 60), ("dev", 10), ("test", 10)]:
        rows = [{"text": f"{split} {i}", "label": s} for i, s in enumerate(sts_scores(n, seed=n))]
        path = tmp_path / f"{split}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        source[split] = str(path)
    spec = {"source": source, "type": "regression", "metric": "spearman"}
    spec["max_examples"] = {"train": 20}
    manifest = prepare_task("scores", spec, tmp_path / "o", seed=0)
    assert manifest["metric"] == "spearman"
    assert [manifest["splits"][s]["size"] for s in SPLITS] == [20, 10, 10]
    train = [r["label"] for r in load_split(tmp_path / "o", "train")]
    stats = manifest["splits"]["train"]["label_stats"]
    assert stats["min"] == min(train) and stats["max"] == max(train)
    pool = sts_scores(60, seed=60)
    assert abs(stats["mean"] - sum(pool) / 60) < 0.25  # binned subsample keeps the level
    first = {"id": "dev-0", "text": "dev 0", "label": sts_scores(10, seed=10)[0]}
    assert load_split(tmp_path / "o", "dev")[0] == first


def test_regression_hf_stsb_like(hub_dataset, tmp_path):
    def columns(scores, prefix):
        return {
            "sentence1": [f"{prefix} a{i}" for i in range(len(scores))],
            "sentence2": [f"{prefix} b{i}" for i in range(len(scores))],
            "label": scores,
        }

    root = hub_dataset(
        {
            "train": columns(sts_scores(50), "tr"),
            "validation": columns([3.8, 0.2, 4.6], "va"),
            "test": columns([-1.0] * 3, "te"),
        },
        STS_FEATURES,
    )
    glue_like = {"type": "hf", "path": str(root), "splits": {"train": "train", "test": "test"}}
    spec = sts_spec(glue_like, label_field="label")
    with pytest.raises(DataError, match="no labels"):
        prepare_task("stsb", spec, tmp_path / "o", seed=0)
    spec["source"]["splits"]["test"] = "validation"
    manifest = prepare_task("stsb", spec, tmp_path / "o", seed=0)
    assert [manifest["splits"][s]["size"] for s in SPLITS] == [45, 5, 3]  # dev carved
    assert manifest["label_names"] == [] and manifest["task_type"] == "regression"
    assert [r["label"] for r in load_split(tmp_path / "o", "test")] == [3.8, 0.2, 4.6]
    assert manifest["splits"]["test"]["label_stats"] == pytest.approx(
        {"mean": 8.6 / 3, "std": expected_stats([3.8, 0.2, 4.6])["std"], "min": 0.2, "max": 4.6}
    )
    assert '"label": 3.8}' in (tmp_path / "o" / "test.jsonl").read_text()


def test_classification_manifest_has_no_regression_fields(fake_bbc, tmp_path):
    manifest = prepare_task("bbc-news", bbc(fake_bbc), tmp_path / "o", seed=0)
    for split in SPLITS:
        assert set(manifest["splits"][split]) == {"size", "sha256", "label_counts"}
    assert manifest["metric"] == "accuracy"


def test_regression_on_builtin_is_rejected(fake_bbc, tmp_path):
    with pytest.raises(ConfigError, match="builtin"):
        prepare_task("bbc-news", bbc(fake_bbc, type="regression"), tmp_path / "o", seed=0)
    assert not (tmp_path / "o").exists()


# --- extra evaluation splits, skip_unlabeled, local_copy ------------------------------


def mnli_like():
    """Columns of a small MNLI: train, matched and mismatched dev sets."""
    return {
        "train": nli_columns([i % 3 for i in range(60)], "tr"),
        "validation_matched": nli_columns([i % 3 for i in range(9)], "m"),
        "validation_mismatched": nli_columns([(i + 1) % 3 for i in range(12)], "mm"),
    }


MNLI_SPLITS = {
    "train": "train",
    "test": "validation_matched",
    "test_mismatched": "validation_mismatched",
}
ALL_MNLI = (*SPLITS, "test_mismatched")


def nli_spec(source, **extra):
    return {"source": source, "text_fields": ["premise", "hypothesis"], **extra}


def test_hf_extra_split_is_prepared_and_listed(hub_dataset, tmp_path):
    root = hub_dataset(mnli_like(), NLI_FEATURES)
    out = tmp_path / "o"
    spec = nli_spec({"type": "hf", "path": str(root), "splits": MNLI_SPLITS})
    manifest = prepare_task("mnli", spec, out, seed=0)
    assert manifest == load_manifest(out)
    assert manifest["eval_splits"] == ["dev", "test", "test_mismatched"]
    assert list(manifest["splits"]) == list(ALL_MNLI)
    assert sorted(p.name for p in out.iterdir()) == [
        "dev.jsonl",
        "manifest.json",
        "test.jsonl",
        "test_mismatched.jsonl",
        "train.jsonl",
    ]
    assert [manifest["splits"][s]["size"] for s in ALL_MNLI] == [54, 6, 9, 12]  # dev carved
    info = manifest["splits"]["test_mismatched"]
    assert set(info) == {"size", "sha256", "label_counts"}
    assert info["label_counts"] == {"entailment": 4, "neutral": 4, "contradiction": 4}
    records = load_split(out, "test_mismatched")
    assert records[0] == {
        "id": "test_mismatched-0",
        "text": "mm p0",
        "text_pair": "mm h0",
        "label": 1,
    }
    assert all(r["id"].startswith("train-") for r in load_split(out, "dev"))  # never mm
    assert "dropped_unlabeled" not in manifest


def test_extra_split_respects_max_examples(hub_dataset, tmp_path):
    root = hub_dataset(mnli_like(), NLI_FEATURES)
    source = {"type": "hf", "path": str(root), "splits": MNLI_SPLITS}
    spec = nli_spec(source, max_examples={"test_mismatched": 6, "test": None})
    manifest = prepare_task("mnli", spec, tmp_path / "o", seed=0)
    assert manifest["splits"]["test_mismatched"]["size"] == 6
    assert set(manifest["splits"]["test_mismatched"]["label_counts"].values()) == {2}
    assert manifest["splits"]["test"]["size"] == 9
    assert len(load_split(tmp_path / "o", "test_mismatched")) == 6


def test_files_extra_split_with_carved_dev_and_test(tmp_path):
    def write(path, n, prefix):
        lines = ["text\tlabel"] + [f"{prefix} {i}\t{'yes' if i % 2 else 'no'}" for i in range(n)]
        path.write_text("\n".join(lines) + "\n")
        return str(path)

    source = {"type": "files", "format": "tsv", "train": write(tmp_path / "train.tsv", 40, "t")}
    source["test_hard"] = write(tmp_path / "hard.tsv", 4, "h")
    spec = {"source": source, "max_examples": {"test_hard": 2}}
    manifest = prepare_task("files", spec, tmp_path / "o", seed=0)
    assert manifest["eval_splits"] == ["dev", "test", "test_hard"]
    sizes = {s: manifest["splits"][s]["size"] for s in manifest["splits"]}
    assert sizes == {"train": 28, "dev": 4, "test": 8, "test_hard": 2}  # 70/10/20 of 40
    assert manifest["source"]["test_hard"] == str((tmp_path / "hard.tsv").resolve())
    assert {r["text"] for r in load_split(tmp_path / "o", "test_hard")} <= {
        f"h {i}" for i in range(4)
    }


def test_manifest_of_a_plain_task_lists_dev_and_test(fake_bbc, tmp_path):
    manifest = prepare_task("bbc-news", bbc(fake_bbc), tmp_path / "o", seed=0)
    assert manifest["eval_splits"] == ["dev", "test"]
    assert list(manifest["splits"]) == list(SPLITS)
    assert "dropped_unlabeled" not in manifest


def snli_like():
    return {
        "train": nli_columns([-1 if i % 10 == 9 else i % 3 for i in range(60)], "tr"),
        "validation": nli_columns([0, 1, 2, -1, 0, 1, 2], "va"),
        "test": nli_columns([0, 1, 2, 0, 1, 2], "te"),
    }


SNLI_SPLITS = {"train": "train", "dev": "validation", "test": "test"}


def test_skip_unlabeled_records_dropped_counts(hub_dataset, tmp_path):
    root = hub_dataset(snli_like(), NLI_FEATURES)
    source = {"type": "hf", "path": str(root), "splits": SNLI_SPLITS}
    with pytest.raises(DataError, match="skip_unlabeled"):
        prepare_task("snli", nli_spec(source), tmp_path / "o", seed=0)
    manifest = prepare_task("snli", nli_spec({**source, "skip_unlabeled": True}), tmp_path / "o", 0)
    assert manifest["dropped_unlabeled"] == {"train": 6, "dev": 1, "test": 0}
    assert manifest["source"]["skip_unlabeled"] is True
    assert [manifest["splits"][s]["size"] for s in SPLITS] == [54, 6, 6]
    labels = [r["label"] for s in SPLITS for r in load_split(tmp_path / "o", s)]
    assert -1 not in labels and set(labels) == {0, 1, 2}
    assert "dev-3" not in {r["id"] for r in load_split(tmp_path / "o", "dev")}


def test_skip_unlabeled_counts_only_source_splits(hub_dataset, tmp_path):
    root = hub_dataset(snli_like(), NLI_FEATURES)
    source = {"type": "hf", "path": str(root), "splits": {"train": "train", "test": "test"}}
    spec = nli_spec({**source, "skip_unlabeled": True})
    manifest = prepare_task("snli", spec, tmp_path / "o", seed=0)
    assert manifest["dropped_unlabeled"] == {"train": 6, "test": 0}  # dev carved from train


def test_local_copy_prepares_the_same_files_as_load_dataset(hub_dataset, saved_dataset, tmp_path):
    columns = mnli_like()
    columns["validation_mismatched"]["label"][3] = -1
    hub = hub_dataset(columns, NLI_FEATURES)
    saved = saved_dataset(columns, NLI_FEATURES)
    source = {"type": "hf", "path": "nyu-mll/multi_nli", "splits": MNLI_SPLITS}
    source["skip_unlabeled"] = True
    limits = {"train": 30, "test_mismatched": 8}
    from_copy = prepare_task(
        "mnli",
        nli_spec({**source, "local_copy": str(saved)}, max_examples=limits),
        tmp_path / "copy",
        seed=3,
    )
    from_hub = prepare_task(
        "mnli", nli_spec({**source, "path": str(hub)}, max_examples=limits), tmp_path / "hub", 3
    )
    for split in ALL_MNLI:
        name = f"{split}.jsonl"
        assert (tmp_path / "copy" / name).read_bytes() == (tmp_path / "hub" / name).read_bytes()
    assert from_copy["splits"] == from_hub["splits"]
    assert from_copy["eval_splits"] == ["dev", "test", "test_mismatched"]
    assert from_copy["dropped_unlabeled"] == {"train": 0, "test": 0, "test_mismatched": 1}
    assert from_copy["source"]["local_copy"] == str(saved.resolve())
    assert from_copy["source"]["path"] == "nyu-mll/multi_nli"
    assert "local_copy" not in from_hub["source"]
    assert load_split(tmp_path / "copy", "test_mismatched") == load_split(
        tmp_path / "hub", "test_mismatched"
    )


def test_missing_local_copy_stops_before_writing(tmp_path):
    source = {"type": "hf", "path": "glue", "name": "mnli", "splits": MNLI_SPLITS}
    source["local_copy"] = str(tmp_path / "hub" / "datasets" / "glue--mnli")
    with pytest.raises(DataError, match="is missing: run the download step first"):
        prepare_task("mnli", nli_spec(source), tmp_path / "o", seed=0)
    assert not (tmp_path / "o").exists()
