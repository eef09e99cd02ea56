"""Build the Slidev deck (static site + PDF) from generated figures and tables.

The deck source (`slides/`) holds only hand-written markdown; every figure and
table is produced by the workflow and copied in here. Slidev is forgiving in
ways that hide broken decks (a missing `src:` import is skipped, a slide that
fails to render still exports with exit code 0), so this module checks the
inputs before building and the PDF after exporting.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from early_exit.slides.markdown import (
    FIGURE_REF,
    DeckError,
    count_slides,
    iter_slides,
    split_long_tables,
)
from early_exit.slides.pages import check_pages
from early_exit.support.atomic import atomic_dir, atomic_path

log = logging.getLogger(__name__)

# What Slidev needs from the deck source; node_modules is linked, never copied.
DECK_SOURCES = ("slides.md", "package.json", "public", "styles", "components", "layouts", "setup")
ENTRY = "slides.md"
# Marks a directory as ours, so a rebuild may delete it without deleting user files.
BUILD_MARKER = ".early-exit-deck-build"
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium",)
# Text Slidev renders into a page (e.g. a template that does not compile) instead of failing.
ERROR_MARKERS = ("An error occurred",)
# On a loaded machine the export has come out with a blank first page (the page was
# printed before it had rendered: seen once in a fresh-clone `make run` while two
# test suites ran beside it; the rerun was fine). A blank page is exported once more,
# alone and with this wait (ms) before each page is printed, before it is an error.
RETRY_WAIT_MS = 3000
# Milliseconds the export may wait for the print page to render (Slidev's default, 30 s,
# ran out on a loaded 2-core machine: seen twice while a workflow and tests ran beside it).
RENDER_TIMEOUT_MS = 180_000
SETUP_HINT = "run scripts/setup_deck.sh (or `PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci` in slides/)"
# Seconds each Slidev command may take: far above a build or an export, so only a hang
# reaches it.
SLIDEV_TIMEOUT_S = 600
# Characters of a failed command's output kept in the error: the end, where Slidev says why.
OUTPUT_TAIL_CHARS = 3000


# --------------------------------------------------------------------------- checks


def check_references(build_dir: Path) -> None:
    """Fail before building if a `/figures/...` image or `src:` import is missing.

    Imports are checked by walking the slides (`markdown.iter_slides`); figures by
    scanning every markdown file of the deck for `/figures/<file>` references.
    """
    list(iter_slides(build_dir / ENTRY))
    for md in sorted(build_dir.glob("*.md")) + sorted(build_dir.glob("generated/**/*.md")):
        for name in FIGURE_REF.findall(md.read_text(encoding="utf-8")):
            if not (build_dir / "public" / "figures" / name).is_file():
                raise DeckError(
                    f"{md.name} references /figures/{name}, "
                    f"but no such figure was given to the deck build"
                )


def find_chromium(chromium: str | None = None) -> str:
    """The browser Slidev's exporter drives: argument, $CHROMIUM_PATH, else Debian's chromium.

    Playwright's own browser download does not work offline, so the export always
    gets an explicit executable. An explicitly named one must exist: silently
    falling back to another browser would hide a misconfiguration.
    """
    explicit = chromium or os.environ.get("CHROMIUM_PATH")
    if explicit:
        if found := shutil.which(explicit):
            return found
        raise DeckError(f"chromium not found or not executable: {explicit}")
    for candidate in (*CHROMIUM_CANDIDATES, "chromium", "chromium-browser"):
        if found := shutil.which(candidate):
            return found
    raise DeckError(
        "no chromium found for the PDF export: install the Debian package `chromium` "
        "(scripts/setup_deck.sh does) or set CHROMIUM_PATH"
    )


class BlankPage(DeckError):
    """An exported page without text: a slide that threw, or a page printed too early."""


def check_pdf(pdf: Path, expected: int) -> int:
    """Count pages and reject broken ones: Slidev exports a broken slide with exit code 0.

    A slide whose template fails to compile shows "An error occurred on this slide";
    one that throws while rendering comes out blank, so a page without any text is
    an error too (every slide here has at least a title).
    """
    from pypdf import PdfReader

    pages = PdfReader(pdf).pages
    for number, page in enumerate(pages, start=1):
        text = page.extract_text() or ""
        if not text.strip():
            raise BlankPage(f"page {number} of the exported deck is blank (a slide failed?)")
        for marker in ERROR_MARKERS:
            if marker in text:
                raise DeckError(f"page {number} of the exported deck shows an error: {marker!r}")
    if len(pages) != expected:
        raise DeckError(
            f"exported deck has {len(pages)} pages, but slides.md has {expected} slides"
        )
    return len(pages)


# --------------------------------------------------------------------------- building


def prepare_build_dir(
    deck_src: Path, figures: list[Path], tables: list[Path], build_dir: Path
) -> None:
    """Assemble a fresh, self-contained deck folder outside the repository.

    The workflow may run in another directory (`snakemake --directory`), so the
    build never writes into `slides/`. Figures and tables are copied, not linked:
    Vite refuses to serve files that resolve outside the deck folder. A table too long
    for one page is split over several slides on the way (`split_long_tables`).
    """
    deck_src, build_dir = deck_src.resolve(), build_dir.resolve()
    slidev = deck_src / "node_modules" / ".bin" / "slidev"
    if not slidev.exists():
        raise DeckError(f"Slidev is not installed ({slidev} is missing): {SETUP_HINT}")
    _reset_dir(build_dir, deck_src)
    for name in DECK_SOURCES:
        src = deck_src / name
        if src.is_dir():
            shutil.copytree(src, build_dir / name)
        elif src.is_file():
            shutil.copy2(src, build_dir / name)
    _link_node_modules(deck_src, build_dir)
    _copy_all(figures, build_dir / "public" / "figures")
    _copy_all(tables, build_dir / "generated")
    for table in map(Path, tables):  # a page cuts what overflows it: split long tables
        copied = build_dir / "generated" / table.name
        if copied.suffix == ".md":
            text = copied.read_text(encoding="utf-8")
            copied.write_text(split_long_tables(text), encoding="utf-8")


def _reset_dir(build_dir: Path, deck_src: Path) -> None:
    """Empty `build_dir`, refusing to delete anything that is not a previous build."""
    if build_dir == deck_src or build_dir in deck_src.parents:
        raise DeckError(f"build dir {build_dir} would overwrite the deck source {deck_src}")
    if build_dir.exists():
        if any(build_dir.iterdir()) and not (build_dir / BUILD_MARKER).exists():
            raise DeckError(f"build dir {build_dir} exists and is not a deck build; remove it")
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True)
    (build_dir / BUILD_MARKER).touch()


def _link_node_modules(deck_src: Path, build_dir: Path) -> None:
    """Share node_modules (hundreds of MB) through a symlink, and tell Vite about it.

    Vite resolves the link to its real path, which lies outside the deck folder:
    without `server.fs.allow` the export's dev server refuses KaTeX's fonts, and
    without `cacheDir` Vite writes its dependency cache into the shared
    `slides/node_modules/.vite`, where parallel builds would race. The CLI must be
    started through the link (`build_dir/node_modules/.bin/slidev`): Slidev
    treats a CLI outside the deck folder as a global install and resolves differently.
    """
    modules = (deck_src / "node_modules").resolve()
    (build_dir / "node_modules").symlink_to(modules, target_is_directory=True)
    (build_dir / "vite.config.mjs").write_text(
        "// Written by early_exit.slides.build: node_modules is a symlink to the deck source.\n"
        "export default {\n"
        f"  cacheDir: {str(build_dir / '.vite')!r},\n"
        f"  server: {{ fs: {{ allow: [{str(modules)!r}] }} }},\n"
        "}\n",
        encoding="utf-8",
    )


def _copy_all(files: list[Path], dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for file in map(Path, files):
        if not file.is_file():
            raise DeckError(f"deck input {file} does not exist")
        shutil.copyfile(file, dest / file.name)


def run_slidev_side_by_side(build_dir: Path, commands: list[list[str]], timeout: int) -> list:
    """Run Slidev commands at once in `build_dir` (the build and the export read the same
    sources and write apart); seconds each took. The first failure stops the others and
    raises with its output's tail. Output goes to files, not pipes, so that a chatty
    command never blocks while another is waited for."""
    env = {**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1", "NO_COLOR": "1"}
    cli = str(build_dir / "node_modules" / ".bin" / "slidev")
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        running = []
        for args in commands:
            out = stack.enter_context(tempfile.TemporaryFile("w+"))
            proc = subprocess.Popen(
                [cli, *args],
                cwd=build_dir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
            stack.callback(_stop, proc)
            running.append((proc, out, args))
        return [_wait(proc, out, args, started, timeout) for proc, out, args in running]


def _wait(proc: subprocess.Popen, out, args: list[str], started: float, timeout: int) -> float:
    try:
        proc.wait(timeout=max(0.0, started + timeout - time.monotonic()))
    except subprocess.TimeoutExpired as exc:
        raise DeckError(f"`slidev {args[0]}` timed out after {timeout} s") from exc
    if proc.returncode != 0:
        out.seek(0)
        tail = out.read()[-OUTPUT_TAIL_CHARS:]
        raise DeckError(f"`slidev {' '.join(args)}` failed (exit {proc.returncode}):\n{tail}")
    return time.monotonic() - started


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def build_deck(
    deck_src: Path,
    figures: list[Path],
    tables: list[Path],
    build_dir: Path,
    pdf_path: Path,
    site_dir: Path,
    chromium: str | None = None,
    timeout: int = SLIDEV_TIMEOUT_S,
    fit_check: bool = True,
) -> dict:
    """Build the static site and the PDF of the deck; return page and slide counts.

    `timeout` bounds each Slidev command (seconds). `fit_check`: open every slide of the
    site in the browser and fail, naming the slide, when content runs off it or an image
    does not load (`early_exit.slides.pages`).

    Both outputs appear atomically: a failed or interrupted build leaves the
    previous ones (or none) in place, never a half-written PDF Snakemake would trust.
    """
    build_dir, pdf_path, site_dir = (Path(p).resolve() for p in (build_dir, pdf_path, site_dir))
    browser = find_chromium(chromium)
    prepare_build_dir(Path(deck_src), figures, tables, build_dir)
    check_references(build_dir)
    expected = count_slides(build_dir / ENTRY)
    # Nested, so a bad PDF also discards the new site: both outputs stay consistent.
    with atomic_dir(site_dir) as site_tmp, atomic_path(pdf_path) as pdf_tmp:
        build_s, export_s = _build_and_export(build_dir, site_tmp, pdf_tmp, browser, timeout)
        try:
            pages = check_pdf(pdf_tmp, expected)
        except BlankPage as err:
            log.warning("%s; exporting once more with --wait %d", err, RETRY_WAIT_MS)
            export_s += _export(build_dir, pdf_tmp, browser, timeout, RETRY_WAIT_MS)
            pages = check_pdf(pdf_tmp, expected)
        if fit_check:
            check_pages(site_tmp, expected, browser, build_dir / "node_modules")
    log.info("deck: %d slides; slidev build %.1f s, export %.1f s", expected, build_s, export_s)
    return {
        "pages": pages,
        "slides": expected,
        "pdf": str(pdf_path),
        "site": str(site_dir),
        "build_seconds": round(build_s, 1),
        "export_seconds": round(export_s, 1),
    }


def _build_and_export(
    build_dir: Path, site: Path, pdf: Path, browser: str, timeout: int
) -> list[float]:
    """Build the site and export the PDF side by side (the export does not use the site).
    Slidev appends ".pdf" to any other name, so the PDF goes through a sibling."""
    export_to = pdf.with_name(pdf.name + ".pdf")
    build = ["build", ENTRY, "--out", str(site)]
    try:
        seconds = run_slidev_side_by_side(
            build_dir, [build, _export_args(export_to, browser)], timeout
        )
        os.replace(export_to, pdf)
    finally:
        export_to.unlink(missing_ok=True)
    return seconds


def _export_args(to: Path, browser: str, wait_ms: int = 0) -> list[str]:
    args = ["export", ENTRY, "--output", str(to), "--executable-path", browser]
    args += ["--timeout", str(RENDER_TIMEOUT_MS)]
    return args + ["--wait", str(wait_ms)] if wait_ms else args


def _export(build_dir: Path, pdf: Path, browser: str, timeout: int, wait_ms: int) -> float:
    """Export the PDF alone (no build beside it), waiting `wait_ms` before each page."""
    export_to = pdf.with_name(pdf.name + ".pdf")
    try:
        (seconds,) = run_slidev_side_by_side(
            build_dir, [_export_args(export_to, browser, wait_ms)], timeout
        )
        os.replace(export_to, pdf)
    finally:
        export_to.unlink(missing_ok=True)
    return seconds
