"""End to end: the whole Snakemake workflow on config/smoke.yaml in a temporary directory.

Real model (MiniLM-L6), real data (BBC headlines subset), real deck. Takes a few minutes.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from pypdf import PdfReader

from early_exit.deck import count_slides

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "config" / "smoke.yaml"
RUN = "results/bbc-headlines/joint/seed1"
pytestmark = pytest.mark.e2e


def snakemake(workdir: Path, *args: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--cores",
        "2",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
        "--configfile",
        str(SMOKE),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    path = tmp_path_factory.mktemp("smoke")
    result = snakemake(path)
    assert result.returncode == 0, result.stderr[-5000:]
    return path


def test_data_stage_writes_the_configured_subsets(workdir):
    manifest = yaml.safe_load((workdir / "data/bbc-headlines/manifest.json").read_text())
    sizes = {split: info["size"] for split, info in manifest["splits"].items()}
    assert sizes == {"train": 300, "dev": 100, "test": 100}
    assert manifest["label_names"] == sorted(manifest["label_names"])


def test_stored_logits_cover_every_exit_of_every_example(workdir):
    with np.load(workdir / RUN / "exit_logits.npz", allow_pickle=False) as npz:
        assert npz["exit_layers"].tolist() == [1, 2, 3, 4, 5, 6]
        for split in ("dev", "test"):
            logits, labels = npz[f"{split}_logits"], npz[f"{split}_labels"]
            assert logits.shape == (100, 6, 5)
            assert np.isfinite(logits).all()
            assert set(labels.tolist()) <= set(range(5))
            assert (npz[f"{split}_lengths"] <= 16).all() and (npz[f"{split}_lengths"] > 2).all()
        final_accuracy = (npz["test_logits"][:, -1].argmax(-1) == npz["test_labels"]).mean()
    assert final_accuracy > 0.4  # 5 balanced-ish classes: chance is about 0.2


def test_sweep_table_is_tidy_and_in_range(workdir):
    table = pd.read_csv(workdir / RUN / "sweep.tsv", sep="\t")
    assert set(table.split) == {"dev", "test"} and len(table) == 22
    assert table.score.between(0, 1).all() and table.accuracy.between(0, 1).all()
    assert table.avg_exit_layer.between(1, 6).all()
    np.testing.assert_allclose(table.speedup, 6 / table.avg_exit_layer)
    np.testing.assert_allclose(table.layer_fraction_used, table.avg_exit_layer / 6)
    assert (table[table.threshold == 0].speedup == 1).all()


def test_deck_pdf_has_one_page_per_slide_and_the_results(workdir):
    pdf = workdir / "results/slides/deck.pdf"
    pages = PdfReader(pdf).pages
    # counted in the build folder, where the generated slides (src: imports) exist
    assert len(pages) == count_slides(workdir / "results/slides/build/slides.md")
    text = "\n".join(page.extract_text() for page in pages)
    assert "An error occurred" not in text
    table = (workdir / "results/analysis/results_table.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| bbc-headlines"))
    final_exit = row.split("|")[5].strip()  # "Final exit (test)" column
    assert final_exit in text
    assert (workdir / "results/slides/site/index.html").is_file()
    assert (workdir / "results/analysis/tradeoff.ipynb").is_file()


def test_a_finished_run_has_nothing_left_to_do_and_reports(workdir):
    dry = snakemake(workdir, "--dry-run")
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr
    report = snakemake(workdir, "--report", "report.html")
    assert report.returncode == 0, report.stderr[-3000:]
    html = (workdir / "report.html").read_text()
    assert "tradeoff.png" in html and "operating point" in html
