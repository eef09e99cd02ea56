"""End to end: the whole Snakemake workflow on config/smoke.yaml in a temporary directory.

Real model (MiniLM-L6), real data (BBC headlines subset), real deck. Takes a few minutes.
"""

import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from pypdf import PdfReader
from workflow_cli import smoke

from early_exit.slides.build import count_slides

REPO = Path(__file__).resolve().parents[2]
RUNS = "results/bbc-headlines/{method}/seed1"
EXITS = {
    "deebert": [1, 2, 3, 4, 5, 6],
    "pabee": [1, 2, 3, 4, 5, 6],
    "berxit": [1, 2, 3, 4, 5, 6],
    "sledgehammer": [1, 3, 6],
    "elasticbert": [1, 2, 3, 4, 5, 6],
    "finetune": [6],
    "static-1": [1],
    "static-3": [3],
    "costeff": [1, 2, 3, 4, 5, 6],
}
LEARNED = {"berxit": {"learned"}}  # a gate: its sweep has the learned policy too
DYNAMIC = ("deebert", "pabee", "berxit", "sledgehammer", "elasticbert", "costeff")
NOTEBOOKS = ("tradeoff", "exits", "calibration", "difficulty", "seeds", "latency")
FIGURES = (
    "tradeoff.png",
    "tradeoff_flops.png",
    "spatial.png",
    "exit_scores.png",
    *(f"exits_{method}.png" for method in DYNAMIC),
    "reliability.png",
    "ece.png",
    "difficulty.png",
    "seeds.png",
    "latency.png",
)
TABLES = (
    "results_table.md",
    "policies.md",
    "elue.md",
    "ece.md",
    "difficulty.md",
    "seeds.md",
    "latency.md",
    "significance.md",
    "guarantee.md",
)
pytestmark = pytest.mark.e2e


snakemake = smoke  # the smoke workflow in a directory; `workdir` (conftest.py) is its run


def test_data_stage_writes_the_configured_subsets(workdir):
    manifest = yaml.safe_load((workdir / "data/bbc-headlines/manifest.json").read_text())
    sizes = {split: info["size"] for split, info in manifest["splits"].items()}
    assert sizes == {"train": 300, "dev": 100, "test": 100}
    assert manifest["label_names"] == sorted(manifest["label_names"])


@pytest.mark.parametrize("method", sorted(EXITS))
def test_stored_logits_cover_every_exit_of_every_example(workdir, method):
    with np.load(workdir / RUNS.format(method=method) / "exit_logits.npz") as npz:
        assert npz["exit_layers"].tolist() == EXITS[method]
        for split in ("dev", "test"):
            logits, labels = npz[f"{split}_logits"], npz[f"{split}_labels"]
            assert logits.shape == (100, len(EXITS[method]), 5)
            assert np.isfinite(logits).all()
            assert set(labels.tolist()) <= set(range(5))
            lengths = npz[f"{split}_lengths"]
            assert (lengths <= 16).all() and (lengths > 2).all()
            flops = npz[f"{split}_flops"]
            assert flops.shape == logits.shape[:2] and (np.diff(flops, axis=1) > 0).all()
            assert (flops[:, 0] > 0).all()
        majority = np.bincount(npz["test_labels"]).max() / 100
        final_accuracy = (npz["test_logits"][:, -1].argmax(-1) == npz["test_labels"]).mean()
    if method in ("deebert", "pabee", "elasticbert", "finetune"):  # full-depth models
        assert final_accuracy > majority + 0.1


def test_slenderized_model_is_smaller_and_cheaper_at_full_depth(workdir):
    stored = {
        m: dict(np.load(workdir / RUNS.format(method=m) / "exit_logits.npz"))
        for m in ("costeff", "elasticbert")
    }
    slim, full = stored["costeff"], stored["elasticbert"]  # both: an exit at every layer
    assert slim["num_parameters"] < 0.75 * full["num_parameters"]
    assert (slim["test_flops"][:, -1] < full["test_flops"][:, -1]).all()
    table = pd.read_csv(workdir / RUNS.format(method="costeff") / "sweep.tsv", sep="\t")
    assert (table.num_parameters == slim["num_parameters"]).all()


@pytest.mark.parametrize("method", sorted(EXITS))
def test_sweep_table_is_tidy_and_in_range(workdir, method):
    table = pd.read_csv(workdir / RUNS.format(method=method) / "sweep.tsv", sep="\t")
    assert set(table.split) == {"dev", "test"}
    expected = (
        {"single-exit"}
        if len(EXITS[method]) == 1
        else {"entropy", "patience", "confidence", "oracle"} | LEARNED.get(method, set())
    )
    assert set(table.policy) == expected
    assert table.score.between(0, 1).all() and table.accuracy.between(0, 1).all()
    assert table.avg_exit_layer.between(EXITS[method][0], EXITS[method][-1]).all()
    np.testing.assert_allclose(table.speedup, 6 / table.avg_exit_layer)
    np.testing.assert_allclose(table.layer_fraction_used, table.avg_exit_layer / 6)
    calibration = yaml.safe_load(
        (workdir / RUNS.format(method=method) / "calibration.json").read_text()
    )
    assert len(calibration["temperatures"]) == len(EXITS[method])
    assert all(t > 0 for t in calibration["temperatures"])


def test_analysis_tables_cover_every_method(workdir):
    table = (workdir / "results/analysis/results_bbc-headlines.md").read_text()
    for method in EXITS:
        assert f"| {method} " in table
    elue = pd.read_csv(workdir / "results/analysis/elue.tsv", sep="\t").set_index("method")
    # the curve: static 1 and 3 layers, and finetune as its 6-layer point (the same training)
    assert elue.loc[["static-1", "static-3", "finetune"], "elue"].abs().max() < 1e-6
    assert elue.loc["finetune", "outside_range"] == 0
    assert elue[elue.policy == "entropy"].loc["deebert", "points"] > 1


def test_every_test_example_is_timed_at_the_chosen_knob_and_agrees(workdir):
    """The latency stage's whole-split table: every early-exit run on both engines, the
    engines' exits checked against the stored outputs (the job failed otherwise), and the
    results table showing the measured speed-up beside the layer speed-up."""
    split = pd.read_csv(workdir / "results/analysis/measured_speedup.tsv", sep="\t")
    timed = split[split.policy != "full"]
    assert set(timed.method) == set(DYNAMIC) and set(timed.engine) == {"torch", "onnxruntime"}
    test = pd.read_json(workdir / "data/bbc-headlines/test.jsonl", lines=True)
    assert (timed.examples == len(test)).all() and (timed.rounds > 1).all()
    assert (timed.differ == timed.tolerated).all() and (timed.measured_speedup > 0).all()
    assert "| Measured " in (workdir / "results/analysis/results_bbc-headlines.md").read_text()


def test_deck_pdf_has_one_page_per_slide_and_the_results(workdir):
    pdf = workdir / "results/slides/deck.pdf"
    pages = PdfReader(pdf).pages
    # counted in the build folder, where the generated slides (src: imports) exist
    assert len(pages) == count_slides(workdir / "results/slides/build/slides.md")
    text = "\n".join(page.extract_text() for page in pages)
    assert "An error occurred" not in text
    table = (workdir / "results/analysis/results_table.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == len(EXITS) + 1  # header + one row per method
    flat = " ".join(unicodedata.normalize("NFKC", text).split())  # NFKC: undo ligatures
    for row in rows[1:]:  # every generated row is on a slide, cell for cell
        cells = [cell.strip() for cell in row.strip("| ").split("|")]
        assert " ".join(cells) in flat, cells
    assert (workdir / "results/slides/site/index.html").is_file()
    # generated slides: one per early-exit method, and the setup from the runs' metadata
    for title in ("DeeBERT", "PABEE", "Sledgehammer", "ElasticBERT", "COST-EFF", "Setup"):
        assert f"\n{title}\n" in f"\n{text}\n", title
    assert "fine-tuning 18 models" in flat and "cores" in flat  # time and hardware recorded


def test_every_notebook_is_executed_exported_and_writes_its_figures(workdir):
    analysis = workdir / "results/analysis"
    for name in NOTEBOOKS:
        executed = yaml.safe_load((analysis / f"{name}.ipynb").read_text())
        assert executed["metadata"]["papermill"]["exception"] is None, name
        assert "<html" in (analysis / f"{name}.html").read_text()[:1000], name
    assert not list(analysis.glob("*.partial.ipynb"))
    for figure in FIGURES:
        assert (analysis / figure).read_bytes()[:4] == b"\x89PNG", figure
    for table in TABLES:
        assert (analysis / table).read_text().startswith("# "), table


def test_seeds_are_aggregated_as_mean_and_spread(workdir):
    # smoke.yaml trains every method with two seeds
    seeds = (workdir / "results/analysis/seeds.md").read_text()
    assert "no spread" not in seeds
    rows = [line for line in seeds.splitlines() if line.startswith("| bbc-headlines ")]
    cells = [[cell.strip() for cell in row.strip("| ").split("|")] for row in rows]
    assert len(rows) == len(EXITS) and all(row[3] == "1, 2" and "±" in row[5] for row in cells)
    table = (workdir / "results/analysis/results_table.md").read_text()
    methods = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert all(line.rstrip(" |").endswith("2") for line in methods[1:])  # the Seeds column
    assert "±" in table


def job_counts(dry_run_output: str) -> dict[str, int]:
    """The "Job stats" table of a dry run, as {rule: count}."""
    lines = dry_run_output.split("Job stats:", 1)[1].splitlines()[3:]
    counts = {}
    for line in lines:
        if not line.strip():
            break
        rule, count = line.split()
        counts[rule] = int(count)
    return counts


def test_editing_one_notebook_reruns_only_that_notebook_and_the_deck(workdir):
    # An edit of notebooks/exits.py reconverts it (Snakemake compares checksums, so a mere
    # `touch` does nothing); forcing that conversion shows what follows, without editing
    # the repository. The exits notebook's score table feeds the presenter notes of its
    # figure slide, so the deck's generated slides follow too; nothing upstream does.
    source = "results/analysis/exits.source.ipynb"
    dry = snakemake(workdir, "--dry-run", "--forcerun", source)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert job_counts(dry.stdout + dry.stderr) == {
        "notebook_to_ipynb": 1,
        "exits_notebook": 1,
        "deck_slides": 1,
        "deck": 1,
        "all": 1,
        "total": 5,
    }


def test_a_finished_run_has_nothing_left_to_do_and_reports(workdir):
    dry = snakemake(workdir, "--dry-run")
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr
    report = snakemake(workdir, "--report", "report.html")
    assert report.returncode == 0, report.stderr[-3000:]
    html = (workdir / "report.html").read_text()
    assert "tradeoff.png" in html and "operating point" in html and "ELUE score" in html
    for name in (*FIGURES, *TABLES, "deck.pdf", "setup.md", "methods.md"):
        assert name in html, name
    for caption in (  # one phrase of each new caption
        "Score of every exit on its own",
        "Where examples leave the network",
        "Reliability diagrams of every exit",
        "Expected calibration error (ECE, 15 bins)",
        "Instance difficulty (Sledgehammer",
        "Spearman",
        "Spread across training seeds",
        "Every method under every exit policy",
        "setup slide",
    ):
        assert caption in html, caption
