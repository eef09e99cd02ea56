rule deck:
    input:
        figures=["results/analysis/tradeoff.png"],
        tables=["results/analysis/results_table.md"],
        # declared so that editing the deck rebuilds it (Slidev ignores a missing src: file)
        slides=DECK_SRC / "slides.md",
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
