# Figures and tables the deck shows: slides/slides.md references each of them by name.
FIGURE_SLIDE_FILES = expand("results/slides/generated/{name}.md", name=FIGURE_SLIDES)
DECK_FIGURES = [
    "results/analysis/tradeoff.png",
    "results/analysis/tradeoff_flops.png",
    "results/analysis/significance.png",
    "results/analysis/spatial.png",
    "results/analysis/exit_scores.png",
    *expand("results/analysis/exits_{method}.png", method=DYNAMIC),
    "results/analysis/reliability.png",
    "results/analysis/ece.png",
    "results/analysis/difficulty.png",
    *(["results/analysis/seeds.png"] if len(set(SEEDS)) > 1 else []),  # backup, several seeds
    "results/analysis/latency.png",
    *(["results/analysis/serving.png"] if SERVED else []),
    *(["results/analysis/splitee_tradeoff.png", "results/analysis/splitee_regret.png"] if SPLITEE else []),
    *(["results/analysis/decoder_tradeoff.png", "results/analysis/decoder_acceptance.png"] if DECODER else []),
]
DECK_TABLES = [
    "results/analysis/results_table.md",
    "results/analysis/elue.md",
    "results/analysis/significance.md",
    "results/analysis/guarantee.md",
    "results/analysis/difficulty.md",
    "results/analysis/latency.md",
    "results/slides/generated/setup.md",
    "results/slides/generated/methods.md",
    "results/slides/generated/splitee.md",
    "results/slides/generated/decoder.md",
    "results/slides/generated/findings.md",
    "results/slides/generated/speed_findings.md",
    "results/slides/generated/limitations.md",
    "results/slides/generated/conclusion.md",
    *FIGURE_SLIDE_FILES,
]


rule deck_slides:
    input:
        manifests=expand("data/{task}/manifest.json", task=TASKS),
        models=run_files("model"),
        points=rules.operating_points.output.points,
        intervals=rules.operating_points.output.summary,
        measured=rules.latency.output.split,  # measured speed-ups beside the layer ones
        significance=rules.operating_points.output.significance,  # the findings' tests
        serving=rules.serving.output.tables if SERVED else [],  # what refilling gained
        sweeps=run_files("sweep.tsv"),  # where the static curve overtakes each method
        # the numbers behind the figure slides (their presenter notes)
        exit_scores=rules.exits_notebook.output.scores,
        ece=rules.calibration_notebook.output.tsv,
        reliability=rules.calibration_notebook.output.gaps,
        decoder=rules.decoder_benchmark.output.summary if DECODER else [],  # the conclusion
    output:
        setup=report(
            "results/slides/generated/setup.md", caption="../report/setup.rst", category="Deck"
        ),
        methods=report(
            "results/slides/generated/methods.md", caption="../report/methods.rst", category="Deck"
        ),
        # computed from the tables above and the config (early_exit.slides.findings)
        findings="results/slides/generated/findings.md",
        speed_findings="results/slides/generated/speed_findings.md",
        limitations="results/slides/generated/limitations.md",
        conclusion="results/slides/generated/conclusion.md",
        # early_exit.slides.figures: a figure slide each, numbers in the notes; the backup
        figures=FIGURE_SLIDE_FILES,
    log:
        "results/logs/deck_slides.log",
    params:
        methods=METHOD_INFO,
        tasks=TASKS,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/deck_slides.py"


rule deck:
    input:
        figures=DECK_FIGURES,
        tables=DECK_TABLES,
        # declared so that editing the deck rebuilds it (Slidev ignores a missing src: file)
        slides=DECK_SRC / "slides.md",
        styles=DECK_SRC / "styles" / "index.css",
    output:
        pdf=report("results/slides/deck.pdf", caption="../report/deck.rst", category="Deck"),
        site=directory("results/slides/site"),
    log:
        "results/logs/deck.log",
    params:
        deck_src=DECK_SRC,
        build_dir="results/slides/build",
        chromium=config["deck"]["chromium"],
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    script:
        "../scripts/build_deck.py"
