"""The browser check of a built deck: a slide whose content runs off its frame, or whose
image does not load, is named; a deck that fits passes. Needs Slidev and chromium (`make
test` installs them, scripts/setup_deck.sh)."""

from __future__ import annotations

from pathlib import Path

import pytest

from early_exit.slides import build as deck
from early_exit.slides import pages
from early_exit.slides.markdown import DeckError

SLIDES = Path(__file__).resolve().parents[2] / "slides"
HEAD = (
    "---\ntheme: seriph\nbackground: '#ffffff'\nfonts:\n  provider: none\ntransition: none\n---\n"
)
ITEMS = "".join(f"- item {i}\n" for i in range(1, 25))
WIDE = "| " + " | ".join("x" * 30 for _ in range(8)) + " |\n|" + "---|" * 8 + "\n"


def built_site(tmp_path: Path, body: str, figures: list[Path] = ()) -> Path:
    """`body` (slides after the headmatter) built by the real Slidev into a site."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "slides.md").write_text(HEAD + body, encoding="utf-8")
    (src / "node_modules").symlink_to(SLIDES / "node_modules")
    build = tmp_path / "build"
    deck.prepare_build_dir(src, list(figures), [], build)
    site = tmp_path / "site"
    deck.run_slidev_side_by_side(build, [["build", deck.ENTRY, "--out", str(site)]], 300)
    return site


def test_overflowing_and_broken_slides_are_named_and_fitting_ones_pass(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    body = (
        "\n# Fits\n\nOne line.\n\n---\n\n# Too long\n\n"
        + ITEMS
        + "\n---\n\n# Too wide\n\n"
        + WIDE
        + "\n---\n\n# Broken figure\n\n![](/figures/broken.png)\n"
    )
    site = built_site(tmp_path, body, [broken])
    chromium = deck.find_chromium()
    report = pages.walk(site, 4, chromium, SLIDES / "node_modules")
    assert [s["title"] for s in report] == ["Fits", "Too long", "Too wide", "Broken figure"]
    fits, long, wide, figure = report
    assert fits["overflow"] == [] and fits["images"] == []
    assert {o["side"] for o in long["overflow"]} == {"bottom"} and long["images"] == []
    assert {o["side"] for o in wide["overflow"]} == {"right"}
    assert figure["images"] == ["/figures/broken.png"] and figure["overflow"] == []
    with pytest.raises(DeckError) as err:
        pages.check_pages(site, 4, chromium, SLIDES / "node_modules")
    message = str(err.value)
    assert "slide 2 (Too long): ul" in message and "past the bottom" in message
    assert "slide 3 (Too wide)" in message and "past the right" in message
    assert "slide 4 (Broken figure): image /figures/broken.png did not load" in message
    assert "slide 1" not in message


def test_problems_one_line_each():
    report = [
        {"slide": 1, "title": "", "overflow": [], "images": []},
        {
            "slide": 7,
            "title": "T",
            "overflow": [{"side": "bottom", "px": 40, "what": "table"}],
            "images": ["/figures/a.png"],
        },
    ]
    assert pages.problems(report) == [
        "slide 7 (T): table runs 40 px past the bottom",
        "slide 7 (T): image /figures/a.png did not load",
    ]
