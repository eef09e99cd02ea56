"""Tests for the deck build: slide counting, input checks, PDF checks, and one real build."""

from __future__ import annotations

import os
import re
import shutil
import textwrap
from pathlib import Path

import pytest

from early_exit.slides import build as deck
from early_exit.slides.markdown import DeckError, count_slides, split_slides

REPO = Path(__file__).resolve().parents[2]
SLIDES = REPO / "slides"
TABLE = """# Results on BBC News

| method | accuracy | speed-up |
|---|---|---|
| full model | 0.9731 | 1.00 |
| entropy S=0.3 | 0.9652 | 1.87 |
"""


def md(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(md(text), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- counting


def test_headmatter_separators_and_frontmatter_blocks():
    slides = split_slides(
        md("""
        ---
        theme: seriph
        title: T
        ---

        # One

        ---

        # Two

        ---
        layout: center
        class: text-center
        ---

        # Three

        ---
        src: ./generated/table.md
        ---
        """)
    )
    assert len(slides) == 4
    assert slides[0].frontmatter == {"theme": "seriph", "title": "T"}
    assert slides[0].content == "# One"
    assert slides[2].frontmatter["layout"] == "center"
    assert slides[2].content == "# Three"
    assert slides[3].frontmatter == {"src": "./generated/table.md"}


def test_dashes_inside_code_fences_and_comments_do_not_split():
    text = md("""
        # One

        ```yaml
        ---
        a: 1
        ---
        ```

        ````md
        ```
        ---
        ```
        ---
        ````

        <!--
        ---
        -->

        ---

        # Two
        """)
    assert [s.content.splitlines()[0] for s in split_slides(text)] == ["# One", "# Two"]


def test_without_headmatter_and_four_dashes():
    # "----" separates but never opens a frontmatter block, even before a non-blank line.
    text = "# One\n\n---\n\n# Two\n----\n# Three\n"
    assert [s.content for s in split_slides(text)] == ["# One", "# Two", "# Three"]


def test_count_follows_src_imports_ranges_and_hidden_slides(tmp_path):
    write(tmp_path / "generated" / "two.md", "# A\n\n---\n\n# B\n")
    entry = write(
        tmp_path / "slides.md",
        """
        ---
        title: T
        ---

        # Title

        ---
        hide: true
        ---

        # Hidden

        ---
        src: ./generated/two.md
        ---

        ---
        src: /generated/two.md#2
        ---
        """,
    )
    assert count_slides(entry) == 1 + 2 + 1


def repo_deck_inputs(folder: Path, figure: Path | None = None) -> tuple[list[Path], list[Path]]:
    """Stand-ins for every figure and generated slide file the repository's deck uses:
    `figure` (or an empty file) under each figure name, TABLE as the results table and
    a one-slide file for each other `src:` import."""
    text = (SLIDES / "slides.md").read_text()
    figures = []
    for name in sorted(set(deck.FIGURE_REF.findall(text))):
        figures.append(folder / name)
        folder.mkdir(parents=True, exist_ok=True)
        if figure:
            shutil.copyfile(figure, folder / name)
        else:
            (folder / name).touch()
    tables = []
    for name in sorted(set(re.findall(r"src: \./generated/(\S+\.md)", text))):
        body = TABLE if name == "results_table.md" else f"# Generated {name}\n\nStand-in.\n"
        tables.append(write(folder / name, body))
    return figures, tables


def test_repo_deck_counts_one_slide_per_entry_and_per_imported_slide(tmp_path):
    shutil.copy(SLIDES / "slides.md", tmp_path / "slides.md")
    _, tables = repo_deck_inputs(tmp_path / "generated")
    entries = split_slides((SLIDES / "slides.md").read_text())
    assert len(tables) == sum(1 for s in entries if s.frontmatter.get("src"))
    assert count_slides(tmp_path / "slides.md") == len(entries)
    write(tmp_path / "generated" / "methods.md", "# A\n\n---\n\n# B\n")
    assert count_slides(tmp_path / "slides.md") == len(entries) + 1


# --------------------------------------------------------------------------- input checks


def test_missing_src_import_is_named(tmp_path):
    write(tmp_path / "slides.md", "# One\n\n---\nsrc: ./generated/results_table.md\n---\n")
    with pytest.raises(DeckError, match="results_table.md"):
        deck.check_references(tmp_path)


def test_missing_figure_is_named(tmp_path):
    write(tmp_path / "slides.md", '# One\n\n<img src="/figures/tradeoff.png" class="h-90" />\n')
    with pytest.raises(DeckError, match="tradeoff.png"):
        deck.check_references(tmp_path)
    write(tmp_path / "public" / "figures" / "tradeoff.png", "png")
    deck.check_references(tmp_path)


def test_missing_node_modules_names_npm_ci(tmp_path):
    src = tmp_path / "slides"
    write(src / "slides.md", "# One\n")
    with pytest.raises(DeckError, match="npm ci"):
        deck.prepare_build_dir(src, [], [], tmp_path / "build")


def test_build_dir_that_is_not_ours_is_not_deleted(tmp_path):
    src = tmp_path / "slides"
    (src / "node_modules" / ".bin").mkdir(parents=True)
    (src / "node_modules" / ".bin" / "slidev").touch()
    write(src / "slides.md", "# One\n")
    precious = write(tmp_path / "build" / "notes.txt", "keep me")
    with pytest.raises(DeckError, match="not a deck build"):
        deck.prepare_build_dir(src, [], [], tmp_path / "build")
    assert precious.exists()
    with pytest.raises(DeckError, match="deck source"):
        deck.prepare_build_dir(src, [], [], src)


def test_prepare_build_dir_copies_inputs_and_links_node_modules(tmp_path):
    src = tmp_path / "slides"
    (src / "node_modules" / ".bin").mkdir(parents=True)
    (src / "node_modules" / ".bin" / "slidev").touch()
    write(src / "slides.md", "# One\n")
    write(src / "public" / "favicon.svg", "<svg/>")
    fig = write(tmp_path / "results" / "tradeoff.png", "png")
    table = write(tmp_path / "results" / "results_table.md", TABLE)
    build = tmp_path / "build"
    for _ in range(2):  # a rebuild replaces the previous build
        deck.prepare_build_dir(src, [fig], [table], build)
    assert (build / "node_modules").is_symlink()
    assert (build / "public" / "favicon.svg").exists()
    for copied in (build / "public" / "figures" / "tradeoff.png", build / "generated" / table.name):
        assert copied.is_file() and not copied.is_symlink()
    assert str((src / "node_modules").resolve()) in (build / "vite.config.mjs").read_text()


def test_explicit_chromium_must_exist(monkeypatch):
    monkeypatch.delenv("CHROMIUM_PATH", raising=False)
    with pytest.raises(DeckError, match="/nonexistent/chromium"):
        deck.find_chromium("/nonexistent/chromium")
    monkeypatch.setenv("CHROMIUM_PATH", "/nonexistent/env-chromium")
    with pytest.raises(DeckError, match="env-chromium"):
        deck.find_chromium()


# --------------------------------------------------------------------------- PDF checks


def text_pdf(path: Path, pages: list[str]) -> Path:
    """A PDF with one page per string, with extractable (TrueType) text."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    with plt.rc_context({"pdf.fonttype": 42}), PdfPages(path) as pdf:
        for text in pages:
            fig = plt.figure(figsize=(4, 2.25))
            fig.text(0.1, 0.5, text)
            pdf.savefig(fig)
            plt.close(fig)
    return path


def fake_slidev(build_dir: Path, script: str) -> Path:
    """A `slidev` CLI in `build_dir` that runs `script` (bash; $1 is the subcommand)."""
    cli = build_dir / "node_modules" / ".bin" / "slidev"
    cli.parent.mkdir(parents=True)
    cli.write_text("#!/bin/bash\n" + md(script))
    cli.chmod(0o755)
    return cli


def test_build_and_export_run_side_by_side(tmp_path):
    # each command waits for the other's mark: run one after the other, both would hang
    fake_slidev(
        tmp_path,
        """
        touch "started-$1"
        other=$([ "$1" = build ] && echo export || echo build)
        for _ in $(seq 100); do [ -e "started-$other" ] && exit 0; sleep 0.1; done
        exit 3
        """,
    )
    seconds = deck.run_slidev_side_by_side(tmp_path, [["build"], ["export"]], timeout=60)
    assert len(seconds) == 2 and all(s > 0 for s in seconds)


def test_a_failing_command_stops_the_other_and_names_itself(tmp_path):
    fake_slidev(
        tmp_path,
        """
        if [ "$1" = build ]; then
          for _ in $(seq 100); do [ -s export.pid ] && break; sleep 0.1; done
          echo "vite: cannot parse slides.md"; exit 2
        fi
        echo $$ > export.pid
        exec sleep 300
        """,
    )
    with pytest.raises(DeckError, match=r"`slidev build` failed \(exit 2\):\nvite: cannot parse"):
        deck.run_slidev_side_by_side(tmp_path, [["build"], ["export"]], timeout=60)
    pid = int((tmp_path / "export.pid").read_text())
    with pytest.raises(ProcessLookupError):  # stopped and reaped, not left running
        os.kill(pid, 0)


def test_a_slidev_command_that_hangs_times_out(tmp_path):
    fake_slidev(tmp_path, "exec sleep 300")
    with pytest.raises(DeckError, match="`slidev export` timed out after 1 s"):
        deck.run_slidev_side_by_side(tmp_path, [["export"]], timeout=1)


def test_check_pdf_counts_pages_and_rejects_error_pages(tmp_path):
    good = text_pdf(tmp_path / "good.pdf", ["Title", "Results"])
    assert deck.check_pdf(good, 2) == 2
    with pytest.raises(DeckError, match="2 pages.*3 slides"):
        deck.check_pdf(good, 3)
    bad = text_pdf(tmp_path / "bad.pdf", ["Title", "An error occurred on this slide."])
    with pytest.raises(DeckError, match="page 2"):
        deck.check_pdf(bad, 2)
    blank = text_pdf(tmp_path / "blank.pdf", ["Title", ""])
    with pytest.raises(DeckError, match="page 2 .* blank"):
        deck.check_pdf(blank, 2)


def test_a_blank_page_is_exported_once_more_alone_with_a_wait(tmp_path):
    """A page printed before it rendered (seen under load) gets one more export, with
    --wait; a page still blank then is an error."""
    src = tmp_path / "slides"
    src.mkdir()
    (src / "slides.md").write_text("# One\n\n---\n\n# Two\n")
    good = text_pdf(tmp_path / "good.pdf", ["One", "Two"])
    blank = text_pdf(tmp_path / "blank.pdf", ["", "Two"])
    (src / "node_modules").mkdir()
    fake_slidev(
        src,
        f"""
        [ "$1" = build ] && {{ mkdir -p "$4"; touch "$4/index.html"; exit 0; }}
        echo "$@" >> {tmp_path}/exports
        case "$*" in *--wait*) cp {good} "$4" ;; *) cp {blank} "$4" ;; esac
        """,
    )
    pdf, site = tmp_path / "out" / "deck.pdf", tmp_path / "out" / "site"
    info = deck.build_deck(
        src, [], [], tmp_path / "build", pdf, site, chromium="true", fit_check=False
    )
    exports = (tmp_path / "exports").read_text().splitlines()
    assert info["pages"] == 2 and len(exports) == 2
    assert "--wait" not in exports[0] and f"--wait {deck.RETRY_WAIT_MS}" in exports[1]
    assert pdf.read_bytes() == good.read_bytes()

    (src / "node_modules" / ".bin" / "slidev").write_text(
        f'#!/bin/bash\n[ "$1" = build ] && {{ mkdir -p "$4"; exit 0; }}\ncp {blank} "$4"\n'
    )
    with pytest.raises(DeckError, match="page 1 .* blank"):
        deck.build_deck(
            src, [], [], tmp_path / "build", pdf, site, chromium="true", fit_check=False
        )
    assert pdf.read_bytes() == good.read_bytes()  # the previous deck stays


# --------------------------------------------------------------------------- real build


def test_real_build_and_export(tmp_path):
    """Needs Slidev and chromium: `make test` installs them (scripts/setup_deck.sh)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from pypdf import PdfReader

    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot([1.0, 1.5, 2.0, 3.0], [0.97, 0.96, 0.94, 0.90], "o-")
    ax.set(xlabel="speed-up", ylabel="accuracy")
    figure = tmp_path / "figure.png"
    fig.savefig(figure, dpi=100)
    plt.close(fig)
    figures, tables = repo_deck_inputs(tmp_path / "inputs", figure)

    pdf, site = tmp_path / "out" / "deck.pdf", tmp_path / "out" / "site"
    info = deck.build_deck(SLIDES, figures, tables, tmp_path / "build", pdf, site)

    assert info["pages"] == info["slides"] == len(split_slides((SLIDES / "slides.md").read_text()))
    text = "\n".join(page.extract_text() for page in PdfReader(pdf).pages)
    for number in ("0.9731", "0.9652", "1.87"):
        assert number in text
    assert "An error occurred" not in text
    assert (site / "index.html").is_file()
    assert sorted(p.name for p in pdf.parent.iterdir()) == ["deck.pdf", "site"]  # no temp left


def test_a_table_too_long_for_one_page_is_split_in_the_build(tmp_path):
    src = tmp_path / "slides"
    (src / "node_modules" / ".bin").mkdir(parents=True)
    (src / "node_modules" / ".bin" / "slidev").touch()
    write(src / "slides.md", "# One\n\n---\nsrc: ./generated/long.md\n---\n")
    rows = "".join(f"| m{i} | {i} |\n" for i in range(30))
    long = write(tmp_path / "results" / "long.md", f"# Long\n\n| a | b |\n|---|---|\n{rows}")
    deck.prepare_build_dir(src, [], [long], tmp_path / "build")
    assert count_slides(tmp_path / "build" / "slides.md") == 1 + 3  # 30 rows: 10 per slide
    assert long.read_text().count("| m") == 30  # the workflow's own file is left as it is
