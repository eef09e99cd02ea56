// Opens every slide of a built Slidev site in headless Chromium and reports, per slide,
// the elements that run off its frame and the images that did not load (JSON on stdout).
// Run by early_exit.slides.pages (which serves the site on 127.0.0.1); not by hand.
//   node check_pages.mjs PLAYWRIGHT_DIR BASE_URL SLIDES CHROMIUM TOLERANCE_PX
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const [playwrightDir, base, count, executablePath, tolerance] = process.argv.slice(2);
const { chromium } = await import(pathToFileURL(path.join(playwrightDir, 'index.mjs')).href);
// Offline: without these flags Chromium keeps calling home and its connections are refused.
const args = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const browser = await chromium.launch({ executablePath, args });
const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
const report = [];
try {
  for (let n = 1; n <= Number(count); n++) {
    await page.goto(`${base}/${n}`, { waitUntil: 'networkidle' });
    await page.waitForSelector(`.slidev-page-${n}`, { timeout: 30000 });
    report.push(await page.evaluate(([n, tol]) => {
      const slide = document.querySelector(`.slidev-page-${n}`);
      const box = slide.getBoundingClientRect();
      const scale = box.width / slide.offsetWidth || 1; // viewport px per slide px
      const title = (slide.querySelector('h1, h2')?.textContent || '').trim();
      const overflow = [];
      for (const el of slide.querySelectorAll('*')) {
        const r = el.getBoundingClientRect();
        if (r.width === 0 || r.height === 0) continue;
        const past = {
          bottom: r.bottom - box.bottom, right: r.right - box.right,
          left: box.left - r.left, top: box.top - r.top,
        };
        const [side, by] = Object.entries(past).sort((a, b) => b[1] - a[1])[0];
        // Only the outermost offender: its children say nothing new.
        if (by / scale > tol && !overflow.some((o) => o.node.contains(el))) {
          overflow.push({ node: el, side, px: Math.round(by / scale),
            what: `${el.tagName.toLowerCase()} "${(el.textContent || '').trim().slice(0, 40)}"` });
        }
      }
      const images = [...slide.querySelectorAll('img')]
        .filter((img) => !img.complete || img.naturalWidth === 0)
        .map((img) => img.getAttribute('src'));
      return { slide: n, title, images,
        overflow: overflow.map(({ side, px, what }) => ({ side, px, what })) };
    }, [n, Number(tolerance)]));
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report));
