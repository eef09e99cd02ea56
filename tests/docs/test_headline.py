"""README.md's headline table is what the documented run wrote (docs/results/)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from early_exit.analysis.headline import current_block

ROOT = Path(__file__).resolve().parents[2]


def test_readme_headline_is_generated_from_the_documented_run():
    spec = importlib.util.spec_from_file_location("update", ROOT / "scripts/update_headline.py")
    update = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(update)
    expected = update.block(ROOT / "docs" / "results")
    assert current_block((ROOT / "README.md").read_text()) == expected, (
        "README.md's headline table differs from docs/results/: "
        "run scripts/update_headline.py (see its docstring)"
    )
