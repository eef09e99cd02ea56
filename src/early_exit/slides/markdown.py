"""The deck's markdown as Slidev reads it: slides, their frontmatter, `src:` imports.

Slidev is forgiving in ways that hide broken decks (a missing `src:` import is skipped),
so the build counts and checks slides here instead of trusting it; `split_slides` follows
Slidev's own parser. `split_long_tables` rewrites a generated file so that no table runs
off its page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from early_exit.support.errors import EarlyExitError

# A slide's leading `---` ... `---` block (its YAML is group 1).
FRONTMATTER = re.compile(r"^---.*\n((?:.*\n)*?)---[ \t]*(?:\n|$)")
# A `/figures/<file>` image in markdown or HTML, not the tail of a longer path or URL.
FIGURE_REF = re.compile(r"(?<![\w./])/figures/([^\s\"'()<>`]+)")
COMMENT_OPEN, COMMENT_CLOSE = "<!--", "-->"  # Slidev skips `---` inside an HTML comment
MAX_TABLE_ROWS = 12  # body rows of a generated table that fit one 16:9 slide
TABLE_HEAD_ROWS = 2  # a markdown table's header row and its `|---|` row
# Characters of text after a split table that still fit under its last part; longer text
# (notes, a list) gets a slide of its own, or it runs off the page (the browser check).
MAX_TAIL_CHARS = 300


class DeckError(EarlyExitError):
    """The deck cannot be built; the message names the missing file or failing command."""


@dataclass
class Slide:
    """One slide as Slidev's parser sees it: optional frontmatter, then markdown."""

    frontmatter: dict = field(default_factory=dict)
    content: str = ""


def split_slides(markdown: str) -> list[Slide]:
    """Split a Slidev markdown file into slides, mirroring `@slidev/parser`'s `parseSync`.

    A line starting with `---` ends the current slide; if the next line is not blank
    (and the line is not `----`), it opens a frontmatter block closed by the next
    `---`, so `---\\nsrc: x\\n---` is one slide, not two. `---` inside fenced code
    or an HTML comment is content. Counting by hand gets these cases wrong.
    """
    lines = re.split(r"\r?\n", markdown)
    slides: list[Slide] = []
    start = 0  # first line of the current slide (its opening `---` if it has frontmatter)
    i = 0
    in_comment = False
    while i < len(lines):
        line = lines[i].rstrip()
        if in_comment:
            in_comment = _html_comment_open(lines[i], True)
        elif line.startswith("---"):
            if start != i:
                slides.append(_parse_slide(lines[start:i]))
            start = i + 1
            if not line.startswith("----") and i + 1 < len(lines) and lines[i + 1].strip():
                start = i
                i += 1
                while i < len(lines) and lines[i].rstrip() != "---":
                    i += 1
        elif line.lstrip().startswith("```"):
            i = _skip_fence(lines, i)
        else:
            in_comment = _html_comment_open(lines[i], False)
        i += 1
    if start <= len(lines) - 1:
        slides.append(_parse_slide(lines[start:]))
    return slides


def _skip_fence(lines: list[str], i: int) -> int:
    """Index of the line closing the fence opened at `i` (unchanged if never closed)."""
    fence = re.match(r"^\s*`+", lines[i]).group(0)
    for j in range(i + 1, len(lines)):
        if lines[j].startswith(fence):
            return j
    return i


def _html_comment_open(line: str, inside: bool) -> bool:
    """Whether an HTML comment is still open after `line` (Slidev skips `---` inside one)."""
    cursor = 0
    while cursor < len(line):
        if inside:
            end = line.find(COMMENT_CLOSE, cursor)
            if end < 0:
                return True
            inside, cursor = False, end + len(COMMENT_CLOSE)
        else:
            begin = line.find(COMMENT_OPEN, cursor)
            if begin < 0:
                return False
            end = line.find(COMMENT_CLOSE, begin + len(COMMENT_OPEN))
            if end < 0:
                return True
            cursor = end + len(COMMENT_CLOSE)
    return inside


def _parse_slide(lines: list[str]) -> Slide:
    text = "\n".join(lines)
    match = FRONTMATTER.match(text)
    if not match:
        return Slide(content=text.strip())
    try:
        data = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        raise DeckError(f"invalid slide frontmatter:\n{match.group(1)}\n{exc}") from exc
    if not isinstance(data, dict):
        raise DeckError(f"slide frontmatter is not a mapping:\n{match.group(1)}")
    return Slide(frontmatter=data, content=text[match.end() :].strip())


def iter_slides(entry: Path, root: Path | None = None, _chain: tuple = ()) -> Iterator[Slide]:
    """Yield the slides Slidev renders from `entry`, following `src:` imports.

    Hidden slides (`hide:`/`disabled:`) are skipped, as Slidev does. A missing
    import raises: Slidev itself would silently drop the slide.
    """
    root = root or entry.parent
    chain = (*_chain, entry.resolve())
    for slide in split_slides(entry.read_text(encoding="utf-8")):
        fm = slide.frontmatter
        if fm.get("hide") or fm.get("disabled"):
            continue
        if not fm.get("src"):
            yield slide
            continue
        target, _, pages = str(fm["src"]).partition("#")
        path = root / target[1:] if target.startswith("/") else entry.parent / target
        if not path.is_file():
            raise DeckError(f"{entry}: slide imports src: {fm['src']}, but {path} does not exist")
        if path.resolve() in chain:
            raise DeckError(f"{entry}: circular src: import of {path}")
        imported = list(iter_slides(path, root, chain))
        yield from _select(imported, pages)


def _select(slides: list[Slide], pages: str) -> list[Slide]:
    """Apply a `src: file.md#1,3-4` range (1-based), as Slidev does."""
    if not pages.strip():
        return slides
    keep: set[int] = set()
    for part in pages.split(","):
        lo, _, hi = part.strip().partition("-")
        keep.update(range(int(lo), int(hi or lo) + 1))
    return [s for n, s in enumerate(slides, start=1) if n in keep]


def count_slides(entry: Path) -> int:
    """Number of pages the exported PDF must have (no click steps are exported)."""
    return sum(1 for _ in iter_slides(entry))


def split_long_tables(markdown: str, max_rows: int = MAX_TABLE_ROWS) -> str:
    """Split every slide whose markdown table has more than `max_rows` rows into several
    slides (balanced, each with the table's header; the heading gets "(1/2)", the text
    after the table stays on the last, or, when longer than `MAX_TAIL_CHARS`, follows on a
    slide of its own headed "(notes)"). Slidev cuts what overflows a page silently.

    Slides are separated by a line `---`, as in the generated files (no frontmatter); a
    file with no table to split is returned unchanged.
    """
    out, split = [], False
    for slide in re.split(r"(?m)^---[ \t]*$", markdown):
        lines = slide.strip("\n").splitlines()
        rows = [i for i, line in enumerate(lines) if line.startswith("|")]
        if len(rows) - TABLE_HEAD_ROWS <= max_rows:
            out.append("\n".join(lines))
            continue
        first, last = rows[0], rows[-1]
        head = lines[first : first + TABLE_HEAD_ROWS]
        body = lines[first + TABLE_HEAD_ROWS : last + 1]
        before, after = lines[:first], lines[last + 1 :]
        split = True
        # ceiling divisions: the fewest slides that hold the rows, then the rows shared evenly
        parts = -(-len(body) // max_rows)
        size = -(-len(body) // parts)
        # a wrapper the table sits in (`<div class="dense-table">`) closes on every part
        closers = [line for line in after if line.strip().startswith("</")]
        after = [line for line in after if not line.strip().startswith("</")]
        tail_slide = len("\n".join(after).strip()) > MAX_TAIL_CHARS
        for n in range(parts):
            top = [
                f"{line} ({n + 1}/{parts})" if line.startswith("# ") else line for line in before
            ]
            rows_n = body[n * size : (n + 1) * size]
            tail = after if n == parts - 1 and not tail_slide else []
            out.append(
                "\n".join([*top, *head, *rows_n, *([""] if closers else []), *closers, *tail])
            )
        if tail_slide:
            title = [f"{line} (notes)" for line in before if line.startswith("# ")]
            out.append("\n".join([*title[:1], "", *after]))
    return "\n\n---\n\n".join(out) + "\n" if split else markdown
