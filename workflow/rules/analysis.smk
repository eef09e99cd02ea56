# Analysis notebooks (jupytext percent files in notebooks/), executed by papermill.
# Each rule's inputs are only what its notebook reads, so editing one notebook reruns
# that notebook (and the deck), nothing else.

rule operating_points:
    input:
        sweeps=run_files("sweep.tsv"),
        # the bootstrap resamples each run's stored outputs (temperatures: confidence)
        logits=run_files("exit_logits.npz"),
        calibration=run_files("calibration.json"),
    output:
        points=report(
            "results/analysis/operating_points.tsv",
            caption="../report/operating_points.rst",
            category="Results",
        ),
        summary="results/analysis/intervals.tsv",
        elue="results/analysis/elue_intervals.tsv",
        significance="results/analysis/significance.tsv",
    log:
        "results/logs/analysis/operating_points.log",
    params:
        max_drop=config["analysis"]["max_drop"],
        bootstrap=config["analysis"].get("bootstrap", {}),
        guarantee=config["analysis"].get("guarantee", {}),
        policies={task: task_policies(config, task) for task in TASKS},
        methods=METHOD_INFO,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    script:
        "../scripts/operating_points.py"


rule notebook_to_ipynb:
    input:
        NOTEBOOKS / "{notebook}.py",
    output:
        "results/analysis/{notebook}.source.ipynb",
    log:
        "results/logs/analysis/{notebook}.jupytext.log",
    shell:
        "{PYTHON} -m jupytext --to ipynb --output {output} {input} > {log} 2>&1"


rule tradeoff_notebook:
    input:
        notebook="results/analysis/tradeoff.source.ipynb",
        sweeps=run_files("sweep.tsv"),
        points=rules.operating_points.output.points,
        intervals=rules.operating_points.output.summary,
        elue_intervals=rules.operating_points.output.elue,
        # the engine over the whole test split, beside the layer speed-up
        measured=rules.latency.output.split,
    output:
        figure=report(
            "results/analysis/tradeoff.png",
            caption="../report/tradeoff.rst",
            category="Trade-off",
        ),
        figure_flops=report(
            "results/analysis/tradeoff_flops.png",
            caption="../report/tradeoff_flops.rst",
            category="Trade-off",
        ),
        figure_spatial=report(
            "results/analysis/spatial.png",
            caption="../report/spatial.rst",
            category="Trade-off",
        ),
        table=report(
            "results/analysis/results_table.md",
            caption="../report/results_table.rst",
            category="Results",
        ),
        per_task=expand("results/analysis/results_{task}.md", task=TASKS),
        policies=report(
            "results/analysis/policies.md", caption="../report/policies.rst", category="Results"
        ),
        elue=report("results/analysis/elue.md", caption="../report/elue.rst", category="Results"),
        notebook="results/analysis/tradeoff.ipynb",
        html="results/analysis/tradeoff.html",
    log:
        "results/logs/analysis/tradeoff.log",
    params:
        sweeps=lambda wc, input: ",".join(input.sweeps),
        points=lambda wc, input: input.points,
        intervals=lambda wc, input: input.intervals,
        elue_intervals=lambda wc, input: input.elue_intervals,
        measured=lambda wc, input: input.measured,
        bootstrap=json.dumps(config["analysis"].get("bootstrap", {})),
        methods=json.dumps(METHOD_INFO),
        split=config["analysis"]["split"],
        max_drop=config["analysis"]["max_drop"],
    shell:
        notebook_shell(
            "tradeoff",
            ["sweeps", "points", "intervals", "elue_intervals", "bootstrap", "methods", "split"]
            + ["max_drop", "measured"],
        )


rule significance_notebook:
    input:
        notebook="results/analysis/significance.source.ipynb",
        summary=rules.operating_points.output.summary,
        significance=rules.operating_points.output.significance,
        points=rules.operating_points.output.points,  # the ltt_* columns
    output:
        figure=report(
            "results/analysis/significance.png",
            caption="../report/significance.rst",
            category="Results",
        ),
        table=report(
            "results/analysis/significance.md",
            caption="../report/significance_table.rst",
            category="Results",
        ),
        guarantee=report(
            "results/analysis/guarantee.md",
            caption="../report/guarantee.rst",
            category="Results",
        ),
        notebook="results/analysis/significance.ipynb",
        html="results/analysis/significance.html",
    log:
        "results/logs/analysis/significance.log",
    params:
        summary=lambda wc, input: input.summary,
        significance=lambda wc, input: input.significance,
        points=lambda wc, input: input.points,
        methods=json.dumps(METHOD_INFO),
        bootstrap=json.dumps(config["analysis"].get("bootstrap", {})),
        guarantee=json.dumps(config["analysis"].get("guarantee", {})),
        max_drop=config["analysis"]["max_drop"],
    shell:
        notebook_shell(
            "significance",
            ["summary", "significance", "points", "methods", "bootstrap", "guarantee"]
            + ["max_drop"],
        )


rule exits_notebook:
    input:
        notebook="results/analysis/exits.source.ipynb",
        logits=run_files("exit_logits.npz"),
        calibration=run_files("calibration.json"),  # temperatures (confidence policy)
        points=rules.operating_points.output.points,  # the knob chosen on dev
    output:
        figure=report(
            "results/analysis/exit_scores.png",
            caption="../report/exit_scores.rst",
            category="Exits",
            labels={"figure": "score of every exit"},
        ),
        per_method=[
            report(
                f"results/analysis/exits_{method}.png",
                caption="../report/exits_method.rst",
                category="Exits",
                labels={"figure": f"exit layers: {method}"},
            )
            for method in DYNAMIC
        ],
        scores="results/analysis/exit_scores.tsv",
        notebook="results/analysis/exits.ipynb",
        html="results/analysis/exits.html",
    log:
        "results/logs/analysis/exits.log",
    params:
        runs=run_dirs(METHODS),
        points=lambda wc, input: input.points,
        methods=json.dumps(METHOD_INFO),
        policies=json.dumps(config["sweep"]["policies"]),
        split=config["analysis"]["split"],
    shell:
        notebook_shell("exits", ["runs", "points", "methods", "policies", "split"])


rule calibration_notebook:
    input:
        notebook="results/analysis/calibration.source.ipynb",
        logits=run_files("exit_logits.npz", DYNAMIC),
        calibration=run_files("calibration.json", DYNAMIC),
    output:
        reliability=report(
            "results/analysis/reliability.png",
            caption="../report/reliability.rst",
            category="Calibration",
        ),
        figure=report(
            "results/analysis/ece.png", caption="../report/ece.rst", category="Calibration"
        ),
        table=report(
            "results/analysis/ece.md", caption="../report/ece_table.rst", category="Calibration"
        ),
        tsv="results/analysis/ece.tsv",
        gaps="results/analysis/reliability.tsv",  # confidence against accuracy per exit
        notebook="results/analysis/calibration.ipynb",
        html="results/analysis/calibration.html",
    log:
        "results/logs/analysis/calibration.log",
    params:
        runs=run_dirs(DYNAMIC),
        methods=json.dumps(METHOD_INFO),
        split=config["analysis"]["split"],
    shell:
        notebook_shell("calibration", ["runs", "methods", "split"])


rule difficulty_notebook:
    input:
        notebook="results/analysis/difficulty.source.ipynb",
        logits=run_files("exit_logits.npz", DYNAMIC),
        calibration=run_files("calibration.json", DYNAMIC),  # first-exit temperature
    output:
        figure=report(
            "results/analysis/difficulty.png",
            caption="../report/difficulty.rst",
            category="Difficulty",
        ),
        table=report(
            "results/analysis/difficulty.md",
            caption="../report/difficulty_table.rst",
            category="Difficulty",
        ),
        tsv="results/analysis/difficulty.tsv",
        notebook="results/analysis/difficulty.ipynb",
        html="results/analysis/difficulty.html",
    log:
        "results/logs/analysis/difficulty.log",
    params:
        runs=run_dirs(DYNAMIC),
        methods=json.dumps(METHOD_INFO),
        split=config["analysis"]["split"],
    shell:
        notebook_shell("difficulty", ["runs", "methods", "split"])


rule seeds_notebook:
    input:
        notebook="results/analysis/seeds.source.ipynb",
        points=rules.operating_points.output.points,
    output:
        figure=report(
            "results/analysis/seeds.png", caption="../report/seeds.rst", category="Seeds"
        ),
        table=report(
            "results/analysis/seeds.md", caption="../report/seeds_table.rst", category="Seeds"
        ),
        notebook="results/analysis/seeds.ipynb",
        html="results/analysis/seeds.html",
    log:
        "results/logs/analysis/seeds.log",
    params:
        points=lambda wc, input: input.points,
        methods=json.dumps(METHOD_INFO),
    shell:
        notebook_shell("seeds", ["points", "methods"])


rule latency_notebook:
    input:
        notebook="results/analysis/latency.source.ipynb",
        tables=rules.latency.output.tables,
        measured=rules.latency.output.split,
    output:
        figure=report(
            "results/analysis/latency.png", caption="../report/latency.rst", category="Latency"
        ),
        table=report(
            "results/analysis/latency.md",
            caption="../report/latency_table.rst",
            category="Latency",
        ),
        notebook="results/analysis/latency.ipynb",
        html="results/analysis/latency.html",
    log:
        "results/logs/analysis/latency.log",
    params:
        tables=lambda wc, input: ",".join(input.tables),
        measured=lambda wc, input: input.measured,
        methods=json.dumps(METHOD_INFO),
    shell:
        notebook_shell("latency", ["tables", "measured", "methods"])


rule serving_notebook:
    input:
        notebook="results/analysis/serving.source.ipynb",
        tables=rules.serving.output.tables,
    output:
        figure=report(
            "results/analysis/serving.png", caption="../report/serving.rst", category="Serving"
        ),
        table=report(
            "results/analysis/serving.md", caption="../report/serving_table.rst", category="Serving"
        ),
        notebook="results/analysis/serving.ipynb",
        html="results/analysis/serving.html",
    log:
        "results/logs/analysis/serving.log",
    params:
        tables=lambda wc, input: ",".join(input.tables),
    shell:
        notebook_shell("serving", ["tables"])


rule splitee_notebook:
    input:
        notebook="results/analysis/splitee.source.ipynb",
        tables=splitee_outputs(config, SEEDS),
        regrets=[p.replace("splitee.tsv", "regret.tsv") for p in splitee_outputs(config, SEEDS)],
    output:
        regret=report(
            "results/analysis/splitee_regret.png",
            caption="../report/splitee_regret.rst",
            category="SplitEE",
        ),
        tradeoff=report(
            "results/analysis/splitee_tradeoff.png",
            caption="../report/splitee_tradeoff.rst",
            category="SplitEE",
        ),
        table=report(
            "results/analysis/splitee.md", caption="../report/splitee_table.rst", category="SplitEE"
        ),
        summary="results/analysis/splitee_summary.tsv",
        notebook="results/analysis/splitee.ipynb",
        html="results/analysis/splitee.html",
    log:
        "results/logs/analysis/splitee.log",
    params:
        tables=lambda wc, input: ",".join(input.tables),
        regrets=lambda wc, input: ",".join(input.regrets),
    shell:
        notebook_shell("splitee", ["tables", "regrets"])
