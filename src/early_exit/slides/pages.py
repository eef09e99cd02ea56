"""Every slide of the built deck opened in a real browser (headless Chromium, the one the
PDF export drives): content that runs off its slide, or an image that did not load, is an
error naming the slide. Slidev lays a slide out at a fixed size and never clips or warns,
so an overlong table silently runs off the bottom of the page.

The site is served from a thread on 127.0.0.1 (an ephemeral port, with the single-page
app's fallback to index.html) and `check_pages.mjs` walks it with Playwright, which the
deck's npm install brings (`playwright-chromium`, without its browser download).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

from early_exit.slides.markdown import DeckError

SCRIPT = Path(__file__).with_name("check_pages.mjs")
# Slide pixels (a slide is 980 wide) an element may stick out before it counts: sub-pixel
# rounding and anti-aliased borders, not content.
TOLERANCE_PX = 2
# Seconds the whole walk may take: about a second a slide, so only a hang reaches it.
TIMEOUT_S = 600


def problems(report: list[dict]) -> list[str]:
    """One line per slide with something off its frame or an image that failed to load."""
    lines = []
    for slide in report:
        where = f"slide {slide['slide']}" + (f" ({slide['title']})" if slide["title"] else "")
        for item in slide["overflow"]:
            lines.append(f"{where}: {item['what']} runs {item['px']} px past the {item['side']}")
        lines += [f"{where}: image {src} did not load" for src in slide["images"]]
    return lines


def check_pages(site: Path, slides: int, chromium: str, node_modules: Path) -> None:
    """DeckError listing every slide of `site` whose content leaves its frame."""
    found = problems(walk(site, slides, chromium, node_modules))
    if found:
        shown = "\n  ".join(found[:20])
        more = f"\n  ... and {len(found) - 20} more" if len(found) > 20 else ""
        raise DeckError(
            f"{len(found)} problem(s) on the deck's slides (shorten the slide, split it, or "
            f"move it to the backup section):\n  {shown}{more}"
        )


def walk(site: Path, slides: int, chromium: str, node_modules: Path) -> list[dict]:
    """The browser's report: per slide, its title, what runs off it and which images failed."""
    node = shutil.which("node")
    playwright = Path(node_modules) / "playwright-chromium"
    if node is None or not playwright.is_dir():
        raise DeckError(f"the page check needs node and {playwright}: run scripts/setup_deck.sh")
    with serve(site) as base:
        args = [node, str(SCRIPT), str(playwright), base, str(slides), chromium, str(TOLERANCE_PX)]
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise DeckError(f"the page check timed out after {TIMEOUT_S} s") from None
    if done.returncode != 0:
        raise DeckError(f"the page check failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


class _SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Static files, and index.html for a slide's route (/12), as a host of the site would."""

    def send_head(self):
        if not Path(self.translate_path(self.path)).exists():
            self.path = "/index.html"
        return super().send_head()

    def log_message(self, *args) -> None:  # quiet: the report says what matters
        pass


@contextlib.contextmanager
def serve(site: Path) -> Iterator[str]:
    """Serve `site` on 127.0.0.1 (a free port) while the block runs; yields its base URL."""
    handler = functools.partial(_SiteHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
