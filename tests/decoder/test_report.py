"""The decoder notebook's figures and table, and the deck's decoder slides, computed from
the stage's tables (those of the tiny-model run in test_stage.py)."""

import json

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from early_exit.analysis import decoder
from early_exit.analysis.plots import SLIDE_FIGURE_IN
from early_exit.slides.decoder import OFF, decoder_markdown, write_decoder_slides

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def tables(stage_run, tmp_path_factory):
    settings, out, knobs, frame, summary, checks = stage_run
    folder = tmp_path_factory.mktemp("tables")
    paths = {
        "summary": folder / "benchmark.tsv",
        "check": folder / "check.tsv",
        "speculative": out / "spec.tsv",
        "calm": out / "calm.tsv",
        "perplexity": out / "outputs" / "perplexity.tsv",
        "training": folder / "training.json",
    }
    summary.assign(threads=1).to_csv(paths["summary"], sep="\t", index=False)
    checks.to_csv(paths["check"], sep="\t", index=False)
    record = {"layers": [1, 2, 3], "num_layers": 4, "tokens": 192, "stories": 8}
    paths["training"].write_text(json.dumps({**record, "generated_tokens": 0, "train_seconds": 1}))
    return paths


def test_the_notebook_figures_and_table(tables, tmp_path):
    loaded = decoder.load_tables(tables)
    for name, figure in (
        ("t.png", decoder.tradeoff_figure(loaded["summary"])),
        ("a.png", decoder.acceptance_figure(loaded["speculative"], loaded["summary"])),
    ):
        # the deck's visual language: the slide's size, the legend outside the data
        assert tuple(figure.get_size_inches()) == SLIDE_FIGURE_IN
        assert not [ax for ax in figure.axes if ax.get_legend()] and len(figure.legends) == 1
        figure.savefig(tmp_path / name)
        plt.close(figure)
    table = decoder.summary_markdown(loaded["summary"])
    assert "| greedy |" in table and "peer assistant_early_exit=2" in table
    assert "6 prompts" in table
    lines = decoder.findings(loaded)
    assert any(line.startswith("Self-speculative E=") and "peer" in line for line in lines)
    assert any(line.startswith("Simulation against the real run (speculative") for line in lines)


def test_the_slides(tables, tmp_path):
    out = tmp_path / "decoder.md"
    write_decoder_slides({k: str(v) for k, v in tables.items()}, out)
    text = out.read_text()
    assert text.count("\n---\n") == 5  # six slides
    assert "/figures/decoder_tradeoff.png" in text and "/figures/decoder_acceptance.png" in text
    assert "assistant_early_exit" in text and "<!--" in text  # the peer; presenter notes
    assert "holds on 6 of 6 prompt runs" in text


def test_no_stage_one_slide(tmp_path):
    out = tmp_path / "decoder.md"
    write_decoder_slides({}, out)
    assert out.read_text() == OFF
    assert decoder_markdown(None) == OFF


def test_a_summary_without_its_columns_is_named(tables, tmp_path):
    broken = tmp_path / "summary.tsv"
    pd.read_csv(tables["summary"], sep="\t").drop(columns=["agreement"]).to_csv(
        broken, sep="\t", index=False
    )
    with pytest.raises(Exception, match="lacks columns agreement"):
        decoder.load_tables({**tables, "summary": broken})
