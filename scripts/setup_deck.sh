#!/usr/bin/env bash
# Install what the deck build (src/early_exit/deck.py) needs, and nothing when it is there:
#   - Debian `chromium` (the PDF export drives it; Playwright's own download does not
#     work offline) and `poppler-utils` (pdftoppm, to look at the exported pages);
#   - Slidev from slides/package-lock.json, when node_modules is missing or older
#     than the lock file.
# Called by the project's main setup script; safe to run again.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SLIDES="$ROOT/slides"

as_root() {
  if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  local cmd=(env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@")
  # A stale package index is the usual reason an install fails: refresh once, retry.
  as_root "${cmd[@]}" || { as_root apt-get update && as_root "${cmd[@]}"; }
}

have_chromium() {
  [[ -n "${CHROMIUM_PATH:-}" && -x "${CHROMIUM_PATH}" ]] || [[ -x /usr/lib/chromium/chromium ]] \
    || command -v chromium >/dev/null
}

missing=()
have_chromium || missing+=(chromium)
command -v pdftoppm >/dev/null || missing+=(poppler-utils)
if ((${#missing[@]})); then
  echo "setup_deck: installing ${missing[*]} with apt-get"
  apt_install "${missing[@]}"
fi

if ! command -v npm >/dev/null; then
  echo "setup_deck: npm not found; install Node.js 20 or newer (with npm)" >&2
  exit 1
fi

# npm writes node_modules/.package-lock.json on every install: compare against it.
installed="$SLIDES/node_modules/.package-lock.json"
if [[ ! -x "$SLIDES/node_modules/.bin/slidev" || ! -e "$installed" \
      || "$SLIDES/package-lock.json" -nt "$installed" ]]; then
  echo "setup_deck: installing Slidev (npm ci in slides/)"
  (cd "$SLIDES" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
else
  echo "setup_deck: Slidev is up to date"
fi
