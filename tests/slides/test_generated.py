import pandas as pd
import pytest
from deck_inputs import operating_points, point, write_model

from early_exit.slides import generated
from early_exit.slides.markdown import count_slides, split_long_tables, split_slides
from early_exit.slides.run_tables import Model

INFO = {
    "deebert": {"recipe": "deebert", "criterion": "entropy", "static": False},
    "pabee": {"recipe": "pabee", "criterion": "patience", "static": False},
    "finetune": {"recipe": "finetune", "criterion": None, "static": True},
}


def points():
    """Each method's operating point on news, two seeds: 85.0 at 2.0x and 87.0 at 2.2x."""
    return operating_points(
        [
            point(method, policy, threshold, seed, 0.85 + delta, 2.0 + 10 * delta)
            for method, policy, threshold in (
                ("deebert", "entropy", 0.25),
                ("deebert", "patience", 2),
                ("pabee", "patience", 3),
                ("finetune", "single-exit", float("nan")),
            )
            for seed, delta in ((1, 0.0), (2, 0.02))
        ]
    )


def test_one_slide_per_early_exit_method_with_its_figure_and_numbers(tmp_path):
    text = generated.methods_markdown(INFO, points())
    slides = split_slides(text)
    assert [s.content.splitlines()[0] for s in slides] == ["# DeeBERT", "# PABEE"]
    assert "/figures/exits_deebert.png" in slides[0].content
    assert "$S$ = 0.25 chosen on dev → 86.0 ± 1.4 accuracy at 2.10× on test" in text
    assert "(full depth 90.0 ± 0.0)" in text
    assert "$t$ = 3 chosen on dev" in slides[1].content  # patience is a whole number
    # the presenter notes carry the numbers unrounded
    assert "<!--\nnews (test): knob 0.25, score 0.860000 (full depth 0.900000)" in slides[0].content
    (tmp_path / "generated").mkdir()
    (tmp_path / "generated" / "methods.md").write_text(text)
    (tmp_path / "slides.md").write_text("# Title\n\n---\nsrc: ./generated/methods.md\n---\n")
    assert count_slides(tmp_path / "slides.md") == 3


def test_method_slides_carry_the_intervals_over_seeds():
    keys = points()[["task", "method", "policy", "test_split"]].drop_duplicates()
    spread = keys.assign(
        test_score_lo=0.81, test_score_hi=0.9, test_speedup_lo=1.5, test_speedup_hi=2.5
    )
    text = generated.methods_markdown(INFO, points(), spread)
    assert "→ 86.0 [81.0, 90.0] accuracy at 2.10× [1.50, 2.50] on test" in text


@pytest.mark.parametrize(
    ("seconds", "text"), [(42.04, "42.0 s"), (249, "4 min 09 s"), (7380, "2 h 03 min")]
)
def test_durations_read_like_the_readme(seconds, text):
    assert generated.duration(seconds) == text


def model_dir(root, method, seconds, hardware, precision=None):
    meta = {
        "backbone": {"name": "packaged:minilm-l6"},
        "method": {"recipe": method},
        "training": {"epochs": 2},
        "progress": {"seconds": seconds},
    }
    if hardware:
        meta["hardware"] = hardware
    if precision:  # older models do not record it
        meta["precision"] = precision
    return write_model(root, method, meta)


def test_setup_slide_reports_config_data_hardware_and_time(tmp_path):
    hardware = {
        "device": "cpu",
        "cpu": "AMD EPYC",
        "cores": 2,
        "torch_threads": 2,
        "torch": "2.13.0",
        "cuda_device": None,
        "python": "3.11",
    }
    dirs = [
        model_dir(tmp_path, "deebert", 100.0, hardware, "bf16"),
        model_dir(tmp_path, "pabee", 50, None),
    ]
    models = [Model.read(d) for d in dirs]
    assert (models[0].task, models[0].method, models[0].seed) == ("news", "deebert", 1)
    config = {
        "backbone": {"name": "packaged:minilm-l6", "pooling": "mean"},
        "seeds": [1],
        "data_seed": 13,
        "training": {"epochs": 2, "batch_size": 32, "learning_rate": 1e-4},
    }
    manifest = {
        "splits": {"train": {"size": 1488}, "dev": {"size": 212}, "test": {"size": 425}},
        "label_names": ["a", "b", "c", "d", "e"],
        "max_length": 48,
        "metric": "accuracy",
    }
    text = generated.setup_markdown(config, INFO, {"news": manifest}, models)
    assert len(split_slides(text)) == 1
    for expected in (
        "`packaged:minilm-l6` · 6 layers · hidden 384 · mean pooling",
        "news: 1,488 / 212 / 425 · 5 classes · ≤ 48 tokens · accuracy",
        "**Seeds** 1 per method (1) · data split seed 13",
        "deebert (entropy), pabee (patience), finetune",
        "2 epochs per stage · batch 32 · learning rate 0.0001 · bf16 training",
        "AMD EPYC, 2 cores · no GPU",
        "torch 2.13.0 · training on cpu with 2 threads",
        "not recorded in these models' metadata",
        "fine-tuning 2 models: 2 min 30 s in total",
        "longest: deebert on news, seed 1: 1 min 40 s",
        "**Scores** ×100 on every slide",  # the unit, said once
    ):
        assert expected in text, expected
    # the training sits in the right column beside its hardware (with five seeds the
    # left one ran 2 px past the slide's bottom in a real build)
    right = text.split("</div>\n<div>")[1]
    assert "**Training** 2 epochs" in right and "**Hardware**" in right
    five = generated.setup_markdown({**config, "seeds": [13, 14, 15, 16, 17]}, INFO, {}, models)
    assert "**Seeds** 5 per method (13–17) · data split seed 13" in five


def test_seed_lists_are_written_as_runs():
    assert generated.seed_list([13]) == "13"
    assert generated.seed_list([14, 13]) == "13, 14"
    assert generated.seed_list([1, 5, 7, 8, 9, 10]) == "1, 5, 7–10"


def test_long_tables_are_split_over_slides_with_their_header():
    rows = "".join(f"| m{i} | {i} |\n" for i in range(13))
    text = f"# Results: news\n\n| Method | Score |\n|---|---|\n{rows}\nTest split.\n"
    text += "\n---\n\n# Short\n\n| a |\n|---|\n| 1 |\n"
    slides = split_slides(split_long_tables(text, max_rows=12))
    assert [s.content.splitlines()[0] for s in slides] == [
        "# Results: news (1/2)",
        "# Results: news (2/2)",
        "# Short",
    ]
    first, second = slides[0].content, slides[1].content
    assert first.count("| m") == 7 and second.count("| m") == 6  # balanced
    assert "| Method | Score |" in first and "| Method | Score |" in second
    assert "Test split." in second and "Test split." not in first
    untouched = "# A\n\n| a |\n|---|\n| 1 |\n\n---\n\n# B\n"
    assert split_long_tables(untouched) == untouched


def test_a_wrapped_table_is_closed_on_every_part():
    rows = "".join(f"| m{i} | {i} |\n" for i in range(13))
    text = f'# T\n\n<div class="dense-table">\n\n| a | b |\n|---|---|\n{rows}\n</div>\n\nNote.\n'
    slides = split_slides(split_long_tables(text, max_rows=12))
    assert len(slides) == 2
    for slide in slides:
        assert (
            slide.content.count('<div class="dense-table">') == slide.content.count("</div>") == 1
        )
    assert "Note." in slides[1].content and "Note." not in slides[0].content


def test_long_text_after_a_split_table_gets_a_slide_of_its_own():
    rows = "".join(f"| m{i} | {i} |\n" for i in range(13))
    notes = "".join(
        f"- pair {i}: the headline is met by a long list of settings\n" for i in range(8)
    )
    text = f"# SplitEE\n\n| Method | Score |\n|---|---|\n{rows}\nTest split.\n\n{notes}"
    slides = split_slides(split_long_tables(text, max_rows=12))
    assert [s.content.splitlines()[0] for s in slides] == [
        "# SplitEE (1/2)",
        "# SplitEE (2/2)",
        "# SplitEE (notes)",
    ]
    assert "pair 7" in slides[2].content and "| m" not in slides[2].content
    assert "pair 0" not in slides[1].content


def test_a_method_named_like_its_paper_is_not_repeated_in_the_slide_title():
    info = {
        "costeff": {"recipe": "costeff", "criterion": "entropy", "static": False},
        "pabee-bert": {"recipe": "pabee", "criterion": "patience", "static": False},
    }
    frame = points().query("method == 'pabee'")
    frame = pd.concat([frame.assign(method="pabee-bert"), frame.assign(method="costeff")])
    titles = [
        s.content.splitlines()[0] for s in split_slides(generated.methods_markdown(info, frame))
    ]
    assert titles == ["# COST-EFF", "# PABEE (pabee-bert)"]


def test_the_setup_slide_says_what_the_thread_count_was_for(tmp_path):
    """It said "(1 threads)" beside latency slides timed on 2: these are training's."""
    hardware = {"device": "cpu", "cpu": "AMD EPYC", "cores": 2, "torch_threads": 1}
    lines = generated._hardware(
        [Model.read(model_dir(tmp_path, "d", 1.0, {**hardware, "torch": "2.13.0"}))]
    )
    assert lines[-1] == "- torch 2.13.0 · training on cpu with 1 thread"
