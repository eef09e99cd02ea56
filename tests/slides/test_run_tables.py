"""Rule deck_slides reads the run once (`read_run_tables`): each table with its own loader,
the manifests and the models' metadata, the stages a run leaves out as None, and a missing
file named with the rule that writes it; the three slide writers take what it read."""

import pandas as pd
import pytest
from deck_inputs import operating_points, point, write_manifest, write_model
from sweeps import sweep_rows

from early_exit.slides import figures, findings, generated
from early_exit.slides.run_tables import RUN_FILES, read_run_tables
from early_exit.support.errors import DataError
from early_exit.support.tables import write_table

INFO = {
    "deebert": {"recipe": "deebert", "criterion": "entropy", "static": False},
    "finetune": {"recipe": "finetune", "criterion": None, "static": True},
}
CONFIG = {
    "backbone": {"name": "packaged:minilm-l6"},
    "seeds": [1],
    "data_seed": 13,
    "training": {"epochs": 2, "batch_size": 32, "learning_rate": 1e-4},
    "analysis": {"max_drop": 0.01, "split": "test"},
}
KEY = {"task": "news", "method": "deebert", "seed": 1}


def tables() -> dict[str, pd.DataFrame]:
    """One small table of each kind rule deck_slides reads, with the columns its loader
    checks."""
    points = operating_points(
        [point("deebert", "entropy", 0.25), point("finetune", "single-exit", float("nan"))]
    )
    keys = points[["task", "method", "policy", "test_split"]]
    timed = {"engine": "torch", "policy": "entropy", "knob": 0.25, "batch_size": 32,
             "examples": 425, "rounds": 14, "measured_speedup": 1.8, "speedup_lo": 1.7,
             "speedup_hi": 1.9, "layer_speedup": 2.0, "differ": 0, "tolerated": 0,
             "full_depth_spread": 1.0, "full_depth_disagrees": False}  # fmt: skip
    significance = {"test_split": "test", "policy": "entropy", "comparison": "vs static curve",
                    "quantity": "score", "value": 0.01, "value_lo": -0.01, "value_hi": 0.02,
                    "test": "sign-flip permutation", "p_value": 0.5, "p_adjusted": 1.0,
                    "significant": False}  # fmt: skip
    gaps = {"exit_layer": 1, "count": 100, "confidence": 0.9, "accuracy": 0.85, "gap": 0.05}
    decoder = {"kind": "calm", "speed_vs_greedy": 1.4, "speed_vs_greedy_lo": 1.3,
               "speed_vs_greedy_hi": 1.5, "agreement": 0.97, "prompts": 12}  # fmt: skip
    serving = {"mode": ["full", "refill"], "offered_rate": 10.0, "rate_multiple": 1,
               "sent": 100, "p50_ms": [10.0, 5.0], "p50_low_ms": [9.0, 4.0],
               "p50_high_ms": [11.0, 6.0], "p90_ms": [20.0, 10.0], "slo_ms": 30.0,
               "rows_per_call": 2.0}  # fmt: skip
    return {
        "points": points,
        "intervals": keys.assign(
            test_score_lo=0.8, test_score_hi=0.9, test_speedup_lo=1.9, test_speedup_hi=2.1
        ),
        "measured": pd.DataFrame([{**KEY, **timed}]),
        "significance": pd.DataFrame([{**KEY, **significance}]),
        "serving": pd.DataFrame({**KEY, **serving}),
        "sweeps": pd.DataFrame(
            sweep_rows("news", "deebert", 1, [(0.25, 0.86, 2.0)], [(0.25, 0.86, 2.0)])
        ).assign(num_parameters=22.6e6),
        "exit_scores": pd.DataFrame({**KEY, "exit_layer": [1, 6], "score": [0.7, 0.9]}),
        "ece": pd.DataFrame(
            {
                **KEY,
                "exit_layer": 1,
                "temperature": 1.2,
                "scaling": ["before", "after"],
                "ece": [0.1, 0.04],
            }
        ),
        "reliability": pd.DataFrame({**KEY, **gaps, "scaling": ["before", "after"]}),
        "decoder": pd.DataFrame([decoder]),
    }


def write_run(root, served=True, decoder=True):
    """The files of one run as the rule's inputs name them: (manifest paths, model
    directories, `files`)."""
    (root / "tables").mkdir()
    files = {}
    for name, frame in tables().items():
        files[name] = root / "tables" / f"{name}.tsv"
        write_table(frame, files[name])
    files["sweeps"] = [files["sweeps"]]  # one per run
    files["serving"] = [files["serving"]] if served else []  # one per served run
    files["decoder"] = files["decoder"] if decoder else []
    manifests = {"news": write_manifest(root / "data" / "news")}
    hardware = {"device": "cpu", "cpu": "AMD EPYC", "cores": 2, "torch_threads": 2}
    meta = {
        "backbone": {"name": "packaged:minilm-l6"},
        "method": {"recipe": "deebert"},
        "hardware": {**hardware, "torch": "2.13.0"},
        "progress": {"seconds": 100.0},
    }
    models = [write_model(root, "deebert", meta)]
    return manifests, models, files


def test_every_table_is_read_once_with_its_loader(tmp_path):
    manifests, models, files = write_run(tmp_path)
    assert set(files) == set(RUN_FILES)
    run = read_run_tables(CONFIG, INFO, manifests, models, files)
    assert run.manifests["news"]["splits"]["test"]["size"] == 425
    assert [(m.task, m.method, m.seed) for m in run.models] == [("news", "deebert", 1)]
    assert run.models[0].backbone_config["num_hidden_layers"] == 6
    for name, frame in tables().items():
        pd.testing.assert_frame_equal(getattr(run, name), frame, check_dtype=False)


def test_the_stages_a_run_leaves_out_are_none(tmp_path):
    run = read_run_tables(CONFIG, INFO, *write_run(tmp_path, served=False, decoder=False))
    assert run.serving is None and run.decoder is None
    assert run.points is not None and run.sweeps is not None


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("points", "rule operating_points"),
        ("measured", "rule latency"),
        ("serving", "rule serving"),
        ("ece", "rule calibration_notebook"),
        ("decoder", "rule decoder_benchmark"),
    ],
)
def test_a_missing_file_is_named_with_the_rule_that_writes_it(tmp_path, name, rule):
    manifests, models, files = write_run(tmp_path)
    missing = tmp_path / "tables" / f"{name}.tsv"
    missing.unlink()
    with pytest.raises(DataError) as err:
        read_run_tables(CONFIG, INFO, manifests, models, files)
    assert str(missing) in str(err.value) and "missing" in str(err.value)
    assert rule in str(err.value)


def test_a_missing_manifest_or_model_is_named(tmp_path):
    manifests, models, files = write_run(tmp_path)
    (models[0] / "exit_config.json").unlink()
    with pytest.raises(DataError, match="exit_config.json.*rule train"):
        read_run_tables(CONFIG, INFO, manifests, models, files)
    manifests["news"].unlink()
    with pytest.raises(DataError, match="manifest.json not found"):
        read_run_tables(CONFIG, INFO, manifests, models, files)


def test_the_three_slide_writers_take_what_was_read(tmp_path):
    """What workflow/scripts/deck_slides.py does: read once, write every generated slide."""
    run = read_run_tables(CONFIG, INFO, *write_run(tmp_path))
    out = tmp_path / "generated"
    generated.write_slides(run, out / "setup.md", out / "methods.md")
    findings.write_findings(run, {name: out / f"{name}.md" for name in findings.SLIDES})
    figures.write_figure_slides(run, {name: out / f"{name}.md" for name in figures.FIGURE_SLIDES})
    written = {p.stem: p.read_text() for p in out.iterdir()}
    assert set(written) == {"setup", "methods", *findings.SLIDES, *figures.FIGURE_SLIDES}
    assert "news: 425 / 425 / 425 · 2 classes" in written["setup"]
    assert "# DeeBERT" in written["methods"]
    assert "news (≤ 48 tokens, 425 test examples)" in written["limitations"]
    assert "**Serving**" in written["limitations"]  # the serving table was given
    assert "deebert refilling scheduler: capacity 10.0" in written["serving_slide"]
    assert "In a decoder (12 prompts, batch 1)" in written["conclusion"]
