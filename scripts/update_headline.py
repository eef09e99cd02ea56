"""Regenerate README.md's headline table from a run's tables.

    .venv/bin/python scripts/update_headline.py results/analysis "RUN DESCRIPTION"

copies the run's tables into docs/results/ (measured_speedup.tsv too, when the run
wrote it: the headline then shows the measured speed-up beside the layer speed-up; with
the methods' criteria from config/config.yaml and the description, which names the
commit, machine and command),
then rewrites the block between the headline markers of README.md from those copies.
tests/docs/test_headline.py fails when README.md and docs/results/ disagree.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import yaml
from snakemake.utils import validate

from early_exit.analysis.headline import OPTIONAL, TABLES, headline_markdown, replace_block
from early_exit.analysis.roles import method_info
from early_exit.config.check import check_config
from early_exit.support.atomic import write_text

ROOT = Path(__file__).resolve().parents[1]
DOCS_RESULTS = ROOT / "docs" / "results"


def criteria_of_default_config() -> dict[str, str]:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    validate(config, schema=str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    check_config(config)
    return {m: i["criterion"] for m, i in method_info(config).items() if i["criterion"]}


def block(folder: Path) -> str:
    """The headline block from the tables in `folder` (docs/results/ by default)."""
    names = [*TABLES, *(name for name in OPTIONAL if (folder / name).is_file())]
    tables = {name: pd.read_csv(folder / name, sep="\t") for name in names}
    criteria = json.loads((folder / "criteria.json").read_text())
    run = (folder / "RUN.md").read_text().strip()
    return f"{headline_markdown(tables, criteria)}\n\n{run}"


def main(source: str, description: str) -> None:
    DOCS_RESULTS.mkdir(exist_ok=True)
    for name in TABLES:
        shutil.copyfile(Path(source) / name, DOCS_RESULTS / name)
    for name in OPTIONAL:  # a run with them replaces the copies, one without removes them
        if (Path(source) / name).is_file():
            shutil.copyfile(Path(source) / name, DOCS_RESULTS / name)
        else:
            (DOCS_RESULTS / name).unlink(missing_ok=True)
    write_text(DOCS_RESULTS / "criteria.json", json.dumps(criteria_of_default_config(), indent=1))
    write_text(DOCS_RESULTS / "RUN.md", description.strip() + "\n")
    readme = ROOT / "README.md"
    write_text(readme, replace_block(readme.read_text(), block(DOCS_RESULTS)))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
