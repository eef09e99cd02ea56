"""The findings, limitations and conclusion slides say what the run's tables say, and
change when the numbers do."""

import pandas as pd
from deck_inputs import operating_points, point, write_manifest, write_model

from early_exit.data.prepared import load_manifest
from early_exit.slides import findings
from early_exit.slides.markdown import split_slides
from early_exit.slides.run_tables import Model, RunTables

INFO = {
    "deebert": {"recipe": "deebert", "criterion": "entropy", "static": False},
    "pabee": {"recipe": "pabee", "criterion": "patience", "static": False},
    "finetune": {"recipe": "finetune", "criterion": None, "static": True},
}


def significance(costeff_like: float = 0.04, lo: float = 0.01, adjusted: float = 0.2):
    """Two methods against the static curve on one task: deebert's difference is
    `costeff_like` [lo, ...] with Holm-adjusted p `adjusted`; pabee's straddles 0."""
    rows = [
        ("deebert", "entropy", costeff_like, lo, costeff_like + 0.03, adjusted),
        ("pabee", "patience", -0.003, -0.02, 0.015, 1.0),
    ]
    return pd.DataFrame(
        [
            {
                "task": "news",
                "test_split": "test",
                "method": method,
                "policy": policy,
                "comparison": "vs static curve",
                "quantity": "score",
                "value": value,
                "value_lo": value_lo,
                "value_hi": value_hi,
                "test": "sign-flip permutation",
                "p_value": adjusted / 4,
                "p_adjusted": adjusted,
                "significant": adjusted < 0.05,
            }
            for method, policy, value, value_lo, value_hi, adjusted in rows
        ]
    )


def points(deebert_speedup: float = 2.4):
    """One seed on news: deebert at `deebert_speedup`, pabee at 1.5x, finetune at 1.0x."""
    return operating_points(
        [
            point(method, policy, 0.5, 13, score, speedup, full=0.94, flops=1e8 / speedup)
            for method, policy, speedup, score in (
                ("deebert", "entropy", deebert_speedup, 0.92),
                ("pabee", "patience", 1.5, 0.93),
                ("finetune", "single-exit", 1.0, 0.94),
            )
        ]
    )


def measured(ratio: float = 0.9):
    return pd.DataFrame(
        [
            {
                "task": "news",
                "method": method,
                "seed": 13,
                "engine": "torch",
                "policy": policy,
                "knob": 0.5,
                "batch_size": 32,
                "examples": 400,
                "rounds": 4,
                "measured_speedup": layer * ratio,
                "speedup_lo": layer * ratio * 0.9,
                "speedup_hi": layer * ratio * 1.1,
                "layer_speedup": layer,
                "differ": 0,
            }
            for method, policy, layer in (("deebert", "entropy", 2.4), ("pabee", "patience", 1.5))
        ]
    )


def serving(refill_speed: float = 2.0):
    rows = []
    for method in ("deebert", "pabee"):
        for mode, speed in (("full", 1.0), ("refill", refill_speed)):
            for multiple in (1, 2, 4):
                p90 = 20 / speed * multiple
                rows.append(
                    {
                        "method": method,
                        "mode": mode,
                        "offered_rate": 10.0 * multiple,
                        "rate_multiple": multiple,
                        "p90_ms": p90,
                        "slo_ms": 30.0,
                    }
                )
    return pd.DataFrame(rows)


def bullets(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("- ")]


def test_the_static_curve_sentence_follows_the_significance_table():
    text = findings.findings_markdown(INFO, points(), significance(), 0.01)
    first = bullets(text)[0]
    assert "above the static curve at the same FLOPs: DeeBERT +4.0 [+1.0, +7.0]" in first
    assert "(not significant after Holm, p = 0.200)" in first
    assert "1 of 2 within their interval of 0 (−0.3)" in first
    # the run's numbers change: the same method, now significant after Holm
    changed = bullets(
        findings.findings_markdown(INFO, points(), significance(0.06, 0.03, 0.01), 0.01)
    )
    assert "DeeBERT +6.0 [+3.0, +9.0] (significant after Holm, p = 0.010)" in changed[0]
    # and now its interval reaches 0: no method above the curve
    none = bullets(findings.findings_markdown(INFO, points(), significance(0.01, -0.01), 0.01))
    assert none[0].startswith("- **news:** no method above the static curve")
    assert "2 of 2 within their interval of 0 (−0.3 to +1.0)" in none[0]


def test_where_the_trade_off_ends_follows_the_operating_points():
    text = findings.findings_markdown(INFO, points(), significance(), 0.01)
    line = bullets(text)[1]
    assert (
        "within 1 point on dev, the trade-off ends between 1.50× (PABEE) and 2.40× (DeeBERT)"
        in line
    )
    assert "largest drop on test 2.0 points (DeeBERT)" in line
    faster = bullets(findings.findings_markdown(INFO, points(3.1), significance(), 0.02))[1]
    assert "within 2 points on dev" in faster and "and 3.10× (DeeBERT)" in faster


def test_real_speed_slide_from_the_measured_and_serving_tables():
    text = findings.findings_markdown(
        INFO, points(), significance(), 0.01, measured=measured(0.9), serving=serving()
    )
    slides = split_slides(text)
    assert [s.content.splitlines()[0] for s in slides] == [
        "# Findings: accuracy at the same cost",
        "# Findings: real speed",
    ]
    speed = bullets(slides[1].content)
    assert "measured speed-up was 90% of the layer speed-up (median; 90–90%)" in speed[0]
    assert "at most 2.16× (DeeBERT, news)" in speed[0]
    # refill: p90 = 10 * multiple <= 30 up to 2x (20/s) against full's 1x (10/s)
    assert "than full depth for 2 of 2 methods" in speed[1]
    slower = bullets(
        findings.findings_markdown(
            INFO, points(), significance(), 0.01, measured=measured(0.5), serving=serving(0.5)
        )
    )
    assert "50% of the layer speed-up" in slower[2]
    assert "for 0 of 2 methods (fewer: DeeBERT, PABEE)" in slower[3]
    # the exact numbers go to the presenter notes, not the page
    assert "<!--" in slides[1].content and "layer 2.40×" in slides[1].content


def test_without_timing_tables_there_is_no_real_speed_slide():
    text = findings.findings_markdown(INFO, points(), significance(), 0.01)
    assert len(split_slides(text)) == 1


def test_conclusion_changes_with_the_numbers():
    text = findings.conclusion_markdown(INFO, points(), significance(), 0.01, measured=measured())
    lines = bullets(text)
    assert lines[0].startswith("- Early exiting skipped layers for 1.50–2.40× within 1 point")
    assert (
        "no method beat a static truncated model" in lines[1]
        and "(DeeBERT: interval above 0" in lines[1]
    )
    assert "kept 90% of the layer speed-up" in lines[2]
    beaten = findings.conclusion_markdown(INFO, points(), significance(0.06, 0.03, 0.01), 0.01)
    assert "DeeBERT beat a static truncated model significantly" in beaten
    slow = findings.conclusion_markdown(
        INFO, points(), significance(), 0.01, measured=measured(0.5)
    )
    assert "kept only 50%" in slow


def test_limitations_come_from_the_config_data_and_models():
    config = {"seeds": [13], "backbone": {"name": "packaged:minilm-l6"}, "device": "auto"}
    manifests = {"news": {"max_length": 48, "splits": {"test": {"size": 1234}}}}
    hardware = [{"device": "cpu", "cores": 2, "cuda_device": None}]
    text = findings.limitations_markdown(
        config, manifests, {"num_hidden_layers": 6, "hidden_size": 384}, hardware
    )
    assert "**1 task**: news (≤ 48 tokens, 1,234 test examples)" in text
    assert "**One seed** (13)" in text
    assert "`packaged:minilm-l6`, 6 layers, hidden 384: smaller than" in text
    assert "**Device** cpu, 2 cores" in text
    assert "Serving" not in text
    gpu = [{"device": "cuda", "cores": 16, "cuda_device": "NVIDIA H100"}]
    more = findings.limitations_markdown(
        {**config, "seeds": [1, 2, 3]}, manifests, {}, gpu, served=True
    )
    assert "**3 seeds** (1, 2, 3)" in more
    assert "smaller than" not in more
    assert "**Device** cuda (NVIDIA H100), 16 cores" in more
    assert "**Serving**" in more


def test_method_names_are_the_papers_unless_the_config_renames_them():
    assert findings.method_name("deebert", INFO) == "DeeBERT"
    assert findings.method_name("my-deebert", {"my-deebert": {"recipe": "deebert"}}) == "my-deebert"
    assert findings.method_name("unknown", INFO) == "unknown"


def test_written_from_the_run_tables(tmp_path):
    hardware = {"device": "cpu", "cores": 2, "cuda_device": None}
    meta = {"backbone": {"name": "packaged:minilm-l6"}, "hardware": hardware}
    model = write_model(tmp_path, "deebert", meta, seed=13)
    write_manifest(tmp_path / "data")
    config = {
        "seeds": [13],
        "backbone": {"name": "packaged:minilm-l6"},
        "analysis": {"max_drop": 0.01},
    }
    run = RunTables(
        config,
        {**INFO, **CURVE_INFO},
        {"news": load_manifest(tmp_path / "data")},
        [Model.read(model)],
        points(),
        significance=significance(),
        measured=measured(),
        serving=serving(),
        sweeps=sweeps(0.7),
    )
    paths = {name: tmp_path / "out" / f"{name}.md" for name in findings.SLIDES}
    findings.write_findings(run, paths)
    assert "DeeBERT +4.0" in paths["findings"].read_text()
    assert "# Findings: real speed" not in paths["findings"].read_text()  # after its slides
    assert "# Findings: real speed" in paths["speed_findings"].read_text()
    assert (
        "static curve scores higher at the same FLOPs beyond 2.0×" in paths["findings"].read_text()
    )
    assert "news (≤ 48 tokens, 425 test examples)" in paths["limitations"].read_text()
    assert "**Serving**" in paths["limitations"].read_text()
    assert paths["conclusion"].read_text().startswith("# Conclusion")


CURVE_INFO = {
    "deebert": {"recipe": "deebert", "criterion": "entropy", "static": False, "reference": "b"},
    "static-1": {
        "recipe": "static",
        "criterion": None,
        "static": True,
        "curve": True,
        "backbone": "b",
    },
    "finetune": {
        "recipe": "finetune",
        "criterion": None,
        "static": True,
        "curve": True,
        "backbone": "b",
    },
}


def sweeps(fast_score: float):
    """The static curve: 2 GFLOPs at 0.9, 1 GFLOP at 0.8 (static-1, 2x). DeeBERT above it
    at 1.5x, then at 2x (1 GFLOP) `fast_score`."""
    rows = [
        ("finetune", "single-exit", 1.0, 2e9, 0.9),
        ("static-1", "single-exit", 2.0, 1e9, 0.8),
        ("deebert", "entropy", 1.0, 2e9, 0.9),
        ("deebert", "entropy", 1.5, 1.333e9, 0.89),
        ("deebert", "entropy", 2.0, 1e9, fast_score),
        ("deebert", "patience", 2.0, 1e9, 0.1),  # another criterion: not its curve
    ]
    return pd.DataFrame(
        [
            {"task": "news", "method": m, "policy": p, "metric": "accuracy", "split": "test",
             "threshold": i, "speedup": s, "avg_flops": f, "score": score, "seed": 13}
            for i, (m, p, s, f, score) in enumerate(rows)
        ]
    )  # fmt: skip


def test_where_the_static_curve_overtakes_follows_the_sweeps():
    (line,), _ = findings.crossover_findings(sweeps(0.7), CURVE_INFO)
    assert line == (
        "**news:** the static curve scores higher at the same FLOPs beyond 2.0× (DeeBERT) "
        "(point estimates)"
    )
    # above the curve at its fastest knob too: the curve never overtakes it
    assert findings.crossover_findings(sweeps(0.85), CURVE_INFO) == ([], [])
    text = findings.findings_markdown(
        CURVE_INFO, points(), significance(), 0.01, sweeps=sweeps(0.7)
    )
    assert "beyond 2.0× (DeeBERT)" in text


def test_many_tasks_continue_on_further_slides_and_are_summarised():
    many = pd.concat([significance().assign(task=f"t{k}") for k in range(6)])  # + news: 7
    text = findings.findings_markdown(INFO, points(), many, 0.01)
    titles = [s.content.splitlines()[0] for s in split_slides(text)]
    assert titles == [
        "# Findings: accuracy at the same cost (1/2)",
        "# Findings: accuracy at the same cost (2/2)",
    ]
    assert all(len(bullets(s.content)) <= findings.MAX_BULLETS for s in split_slides(text))
    manifests = {
        f"t{k}": {"max_length": 24 * (k + 1), "splits": {"test": {"size": 100 * (k + 1)}}}
        for k in range(5)
    }
    config = {"seeds": [13], "backbone": {"name": "b"}}
    text = findings.limitations_markdown(config, manifests, {}, [])
    assert "**5 tasks**: ≤ 24–120 tokens, 100–500 test examples each" in text


def test_an_empty_family_of_tests_still_writes_the_slides():
    """A run without early-exit methods on a task has a header-only significance.tsv."""
    empty = significance().iloc[:0]
    text = findings.findings_markdown(INFO, points(), empty, 0.01)
    assert "no method above" not in text and "the trade-off ends" in text
    assert "no method beat a static truncated model" in findings.conclusion_markdown(
        INFO, points(), empty, 0.01
    )


def decoder_summary(spec=0.68, calm=1.23, agreement=0.62) -> pd.DataFrame:
    rows = [
        ("greedy", "greedy", 1.0, 1.0, 1.0, 1.0),
        ("speculative E=6 k=1", "speculative", spec, spec - 0.02, spec + 0.02, 1.0),
        ("calm t=0.775", "calm", calm, calm - 0.1, calm + 0.15, agreement),
        ("peer assistant_early_exit=8", "peer", 0.27, 0.26, 0.29, 1.0),
    ]
    columns = ["method", "kind", "speed_vs_greedy", "speed_vs_greedy_lo", "speed_vs_greedy_hi"]
    frame = pd.DataFrame(rows, columns=[*columns, "agreement"])
    return frame.assign(prompts=12)


def test_the_conclusion_says_what_the_decoder_stage_measured():
    plain = findings.conclusion_markdown(INFO, points(), significance(), 0.01)
    assert "decoder" not in plain  # no stage, no bullet
    text = findings.conclusion_markdown(
        INFO, points(), significance(), 0.01, decoder=decoder_summary()
    )
    line = bullets(text)[-1]
    assert line.startswith("- In a decoder (12 prompts, batch 1)")
    assert "0.68× [0.66, 0.70] of greedy (transformers' own: 0.27× [0.26, 0.29])" in line
    assert "CALM-style exits at 1.23× [1.13, 1.38], 62% of tokens" in line
    moved = findings.conclusion_markdown(
        INFO, points(), significance(), 0.01, decoder=decoder_summary(1.1, 0.9, 0.95)
    )
    assert "1.10× [1.08, 1.12] of greedy" in moved and "0.90×" in moved and "95% of" in moved
