"""The deck's SplitEE slides: the cost model defined, one table, the headline not met by
offloading everything, numbers in the notes."""

import pandas as pd

from early_exit.analysis.splitee_results import headline
from early_exit.slides.markdown import MAX_TABLE_ROWS, split_slides
from early_exit.slides.splitee_slides import splitee_slides_markdown, write_splitee_slides
from early_exit.support.tables import write_table

SETTINGS = {"lambda": 0.1, "lambda_depth": 12, "alpha": [0.3, 0.75], "offload_costs": [0.1, 0.4]}
# policy: accuracy, cost reduction, share offloaded, split layer
POLICIES = {
    "final-layer": (0.90, 0.0, 0.0, 6.0),
    "early-exit": (0.85, 0.70, 0.0, 2.0),
    "best-fixed": (0.90, 0.60, 1.0, 1.0),  # offloads everything: inside the region, not counted
    "splitee": (0.895, 0.55, 0.40, 2.0),
    "splitee-s": (0.89, 0.45, 0.50, 1.5),
}


def summary() -> pd.DataFrame:
    rows = []
    for source, target in (("a", "b"), ("b", "a")):
        for alpha in SETTINGS["alpha"]:
            for o in SETTINGS["offload_costs"]:
                for policy, (acc, red, off, layer) in POLICIES.items():
                    rows.append(
                        {
                            "source": source,
                            "target": target,
                            "method": "m",
                            "alpha": alpha,
                            "offload_cost": o,
                            "policy": policy,
                            "accuracy": acc,
                            "accuracy_std": 0.01,
                            "cost_reduction": red,
                            "offload_rate": off,
                            "avg_split_layer": layer,
                            "regret": 3.0,
                            "regret_std": 0.5,
                            "accuracy_drop": 100 * (0.90 - acc),
                        }
                    )
    summ = pd.DataFrame(rows)
    summ["headline"] = headline(summ.cost_reduction, summ.accuracy_drop, summ.offload_rate)
    return summ


def test_cost_model_slide_defines_lambda_and_the_offloading_cost():
    slides = split_slides(splitee_slides_markdown(SETTINGS, summary()))
    model = slides[0].content
    assert model.startswith("# Extension: SplitEE")
    assert "**λ**" in model and "**o**" in model and "**α**" in model
    assert "0.1 on a 12-layer backbone (the paper's), 0.2 on this 6-layer model" in model
    assert "λL = 1.2" in model and "o = 0.1, 0.4" in model and "(0.3, 0.75)" in model
    assert "offloading every example at layer 1" in model and "not counted" in model


def test_one_table_with_every_alpha_and_x100_scores():
    slides = split_slides(splitee_slides_markdown(SETTINGS, summary()))
    tables = [s for s in slides if "| Stream" in s.content]
    assert len(tables) == 1
    table = tables[0].content
    rows = [
        line
        for line in table.splitlines()
        if line.startswith("| a → b") or line.startswith("| b → a")
    ]
    assert len(rows) == 2 * len(POLICIES) <= MAX_TABLE_ROWS  # no split over pages
    assert "α = 0.3" in table and "α = 0.75" in table
    assert "90.0 · 0% · 0%" in table  # final layer: accuracy x100, not a fraction
    assert "**89.5 · 55% · 40%**" in table  # SplitEE meets the headline: bold


def test_offloading_everything_does_not_meet_the_headline():
    text = splitee_slides_markdown(SETTINGS, summary())
    assert "headline met by splitee (α 0.3/0.75)" in text
    assert "only by offloading everything: best-fixed (α 0.3/0.75)" in text
    assert "**90.0 · 60% · 100%**" not in text


def test_figures_carry_their_numbers_in_presenter_notes():
    slides = split_slides(splitee_slides_markdown(SETTINGS, summary()))
    figures = [s.content for s in slides if "/figures/" in s.content]
    assert len(figures) == 2
    for slide in figures:
        assert slide.rstrip().endswith("-->")  # Slidev: the last comment is the notes
    assert "a → b α 0.3 splitee: 89.50 ± 1.00" in figures[0]
    assert "final regret 3.00 ± 0.50" in figures[1]


def test_written_from_the_summary_table_or_a_note_without_a_section(tmp_path):
    write_table(summary(), tmp_path / "s.tsv")
    write_splitee_slides(SETTINGS, tmp_path / "s.tsv", tmp_path / "slides.md")
    text = (tmp_path / "slides.md").read_text()
    assert text.count("\n---\n") == 3 and "headline met by splitee" in text
    write_splitee_slides(None, None, tmp_path / "none.md")
    assert "no `splitee:` section" in (tmp_path / "none.md").read_text()
