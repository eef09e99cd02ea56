"""The model card an export carries (README.md), written from its manifest, the knobs
chosen on dev and the latency table, without exporting anything."""

import numpy as np
import pandas as pd

from early_exit.inference.model_card import model_card, speed_section

MANIFEST = {
    "model": {
        "task": "bbc-news",
        "task_type": "classification",
        "label_names": ["business", "sport"],
        "max_length": 128,
        "backbone": {"name": "tiny-bert"},
        "method": {"recipe": "pabee"},
        "seed": 13,
        "exit": {"extra": {}},
    },
    "source": "results/bbc-news/pabee/seed13",
    "fields": ["text"],
    "num_layers": 4,
    "exit_layers": [1, 2, 3, 4],
    "head": "pooler",
    "gate": False,
    "num_parameters": 1234567,
    "pruned_shapes": None,
}
POINTS = {
    "patience": {
        "knob": 2.0,
        "metric": "accuracy",
        "dev_score": 0.9,
        "test_score_full": 0.95,
        "test_score": 0.94,
        "test_speedup": 1.5,
        "chosen_from": "the run's sweep.tsv (max_drop 0.01)",
    }
}


def test_the_card_names_the_model_the_knobs_and_the_temperatures():
    card = model_card(MANIFEST, POINTS, None, np.array([1.25, 1.0, 0.9, 1.1]))
    assert card.startswith("# bbc-news / pabee / seed 13: an early-exit model in ONNX")
    assert "`tiny-bert`, 4 layers, full width, 1,234,567 parameters" in card
    assert "exits after layers 1, 2, 3, 4; head `pooler`, no exit gate" in card
    assert "temperatures: 1.250, 1.000, 0.900, 1.100 (per exit, fitted on dev)" in card
    assert "| patience | 2 | accuracy | 0.900 | 0.950 | 0.940 | 1.50 |" in card
    assert "Not measured: the run has no latency table" in card


def test_without_points_or_temperatures_the_card_says_what_is_missing():
    pruned = MANIFEST | {
        "gate": True,
        "pruned_shapes": {"heads": [2, 2], "intermediate": [8, 8], "embedding_rank": 4},
    }
    card = model_card(pruned, {}, None, None)
    assert "pruned (COST-EFF widths: heads [2, 2], FFN [8, 8], embedding rank 4)" in card
    assert "a learned exit gate (BERxiT)" in card
    assert "none (the run has no calibration.json): the confidence policy uses T = 1" in card
    assert "`--threshold auto` is refused; give a number" in card


def test_the_speed_section_shows_the_knob_chosen_on_dev_and_the_machine():
    latency = pd.DataFrame(
        {
            "chosen_on_dev": [False, True],
            "policy": ["full", "patience"],
            "knob": [np.nan, 2.0],
            "batch_size": [1, 1],
            "measured_speedup": [1.0, 1.4],
            "device": ["cpu", "cpu"],
            "threads": [2, 2],
        }
    )
    text = speed_section(latency)
    assert "| patience | 2.000 | 1 | 1.400 |" in text
    assert "full" not in text.split("\n\n", 1)[1]  # only the row chosen on dev
    assert "device cpu, threads 2" in text
    assert "records the device and thread count, not the processor" in text
