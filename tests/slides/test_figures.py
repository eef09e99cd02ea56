"""The figure slides: numbers in the presenter notes, the calibration sentence computed from
its table, the seeds slide only with several seeds, every slide imported by the deck."""

import re
from pathlib import Path

import pandas as pd
import pytest
from deck_inputs import operating_points, point

from early_exit.slides import figures
from early_exit.slides.markdown import split_slides
from early_exit.slides.run_tables import RunTables

REPO = Path(__file__).resolve().parents[2]
INFO = {
    "deebert": {"recipe": "deebert", "criterion": "entropy", "static": False},
    "finetune": {"recipe": "finetune", "criterion": None, "static": True},
}
CONFIG = {"seeds": [1], "analysis": {"split": "test"}}


def points(seeds=(1,)):
    """deebert (entropy) and finetune on news at 2.0x; seed s scores 0.85 + s / 100."""
    return operating_points(
        [
            point(method, policy, threshold, seed, 0.85 + 0.01 * seed)
            for method, policy, threshold in (
                ("deebert", "entropy", 0.25),
                ("finetune", "single-exit", float("nan")),
            )
            for seed in seeds
        ]
    )


def gaps(confidence=(0.40, 0.97), accuracy=(0.93, 0.95)):
    """Exit 1 of deebert on news, before and after scaling."""
    rows = []
    for scaling, conf, acc in zip(("before", "after"), confidence, accuracy, strict=True):
        rows.append(
            {
                "task": "news",
                "method": "deebert",
                "exit_layer": 1,
                "scaling": scaling,
                "count": 100,
                "confidence": conf,
                "accuracy": acc,
                "gap": conf - acc,
            }
        )
    return pd.DataFrame(rows)


def tables():
    """The notebooks' and the operating_points rule's tables the figure slides read."""
    exit_scores = pd.DataFrame(
        {
            "task": "news",
            "method": "deebert",
            "seed": 1,
            "exit_layer": [1, 2],
            "metric": "accuracy",
            "score": [0.7294, 0.8],
        }
    )
    ece = pd.DataFrame(
        {
            "task": "news",
            "method": "deebert",
            "seed": 1,
            "exit_layer": 1,
            "temperature": 0.2,
            "scaling": ["before", "after"],
            "ece": [0.41, 0.047],
        }
    )
    significance = pd.DataFrame(
        {
            "task": "news",
            "test_split": "test",
            "method": "deebert",
            "quantity": "score",
            "comparison": ["drop", "vs static curve"],
            "value": [0.01, 0.044],
            "value_lo": [-0.01, 0.011],
            "value_hi": [0.02, 0.077],
            "test": "McNemar exact",
            "p_adjusted": [1.0, 0.179],
            "significant": [False, False],
        }
    )
    return {
        "exit_scores": exit_scores,
        "ece": ece,
        "reliability": gaps(),
        "significance": significance,
    }


def sweeps():
    rows = []
    for method, policy, flops, params, score in (
        ("deebert", "entropy", 5e7, 22.6e6, 0.8),
        ("deebert", "entropy", 1e8, 22.6e6, 0.9),
        ("finetune", "single-exit", 1e8, 22.6e6, 0.88),
    ):
        rows.append(
            {
                "task": "news",
                "method": method,
                "policy": policy,
                "metric": "accuracy",
                "threshold": flops,
                "split": "test",
                "score": score,
                "avg_flops": flops,
                "num_parameters": params,
                "speedup": 1e8 / flops,
            }
        )
    return pd.DataFrame(rows)


def test_calibration_sentence_is_computed_from_the_table():
    text = figures.calibration_sentence(gaps())
    assert "every exit shown was under-confident before scaling (1 of 1)" in text
    assert "mean confidence 40 at accuracy 93 (×100)" in text
    assert "within 2.0 points" in text  # after scaling: |97 - 95|
    over = figures.calibration_sentence(gaps(confidence=(0.99, 0.95), accuracy=(0.80, 0.95)))
    assert "over-confident" in over and "under-confident" not in over


def test_seeds_slide_only_with_several_seeds():
    criteria = {"deebert": "entropy"}
    one = figures.backup_markdown(CONFIG, points(), criteria)
    assert len(split_slides(one)) == 1 and "/figures/seeds.png" not in one
    several = figures.backup_markdown({**CONFIG, "seeds": [1, 2]}, points((1, 2)), criteria)
    slides = split_slides(several)
    assert len(slides) == 2 and "/figures/seeds.png" in slides[1].content
    assert "news deebert: seed 1: 86.00, 2.000×, seed 2: 87.00, 2.000×" in several


def test_every_figure_slide_carries_its_numbers_in_presenter_notes(tmp_path):
    paths = {name: tmp_path / f"{name}.md" for name in figures.FIGURE_SLIDES}
    run = RunTables(CONFIG, INFO, {}, [], points(), sweeps=sweeps(), **tables())
    figures.write_figure_slides(run, paths)
    texts = {name: path.read_text() for name, path in paths.items()}
    for name in ("exit_scores_slide", "calibration_slide", "ece_slide", "tradeoff_slide"):
        assert texts[name].rstrip().endswith("-->"), name  # Slidev: the notes close it
        assert "/figures/" in texts[name]
    assert "news deebert: 1: 72.94, 2: 80.00" in texts["exit_scores_slide"]
    assert "news deebert: 1: 41.00 → 4.70" in texts["ece_slide"]
    assert "news deebert (entropy): 86.00 at 2.000×" in texts["tradeoff_slide"]
    assert "news deebert (entropy): 86.00 at 0.1000 GFLOPs" in texts["tradeoff_flops_slide"]
    assert "news deebert vs static curve: 4.40 [1.10, 7.70]" in texts["significance_slide"]
    assert (
        "news front: deebert 0.0500 GFLOPs 80.00, deebert 0.1000 GFLOPs 90.00"
        in (texts["spatial_slide"])
    )
    assert "under-confident" in texts["calibration_slide"]
    assert "serves no method" in texts["serving_slide"]  # no serving tables: no figure
    assert texts["backup"].startswith("# Backup")


@pytest.mark.parametrize("name", figures.FIGURE_SLIDES)
def test_the_deck_imports_every_figure_slide(name):
    deck = (REPO / "slides" / "slides.md").read_text(encoding="utf-8")
    assert re.search(rf"^src: \./generated/{name}\.md$", deck, re.M), name


def test_the_deck_shows_the_backup_after_the_conclusion():
    deck = (REPO / "slides" / "slides.md").read_text(encoding="utf-8")
    order = [
        deck.index(f"generated/{n}.md") for n in ("splitee", "conclusion", "backup", "methods")
    ]
    assert order == sorted(order)
    assert deck.index("generated/serving_slide.md") < deck.index("generated/splitee.md")


def test_the_serving_slide_gives_the_offered_rate_and_the_served_accuracy():
    rows = []
    for mode, p90 in (("full", 100.0), ("refill", 50.0)):
        for multiple, rate in ((1, 10.0), (2, 20.0)):
            rows.append(
                {
                    "task": "news",
                    "method": "deebert",
                    "seed": 1,
                    "mode": mode,
                    "offered_rate": rate,
                    "rate_multiple": multiple,
                    "sent": 100,
                    "p50_ms": p90 / 2,
                    "p50_low_ms": p90 / 2 - 1,
                    "p50_high_ms": p90 / 2 + 1,
                    "p90_ms": p90 * multiple,
                    "slo_ms": 150.0,
                    "rows_per_call": 2.0,
                }
            )
    text = figures.serving_slide(pd.DataFrame(rows), points(), {"deebert": "entropy"})
    assert "/figures/serving.png" in text
    assert "Accuracy ×100 at the served knob (test): deebert 86.0." in text
    assert "deebert full depth, dynamic batching: capacity 10.0; at 10.0 req/s p50 50.0" in text
    assert "deebert refilling scheduler: capacity 20.0" in text
