# Analysis notebooks (jupytext percent files in notebooks/), executed by papermill.
# Each rule's inputs are only what its notebook reads, so editing one notebook reruns
# that notebook (and the deck), nothing else.

# Methods with exit heads below the last layer (not the static baselines or plain fine-tuning).
DYNAMIC = [m for m, i in METHOD_INFO.items() if not i["static"]]


def run_dirs(methods):
    """The run directories of `methods` (every task and seed), as one papermill parameter."""
    return ",".join(path.rstrip("/") for path in run_files("", methods))


def notebook_shell(name, parameters):
    """Execute notebook `name` with papermill, passing each of `parameters` (params of the
    rule of the same name) with -p, plus out_dir. papermill writes the notebook cell by cell,
    so it writes a partial file that is renamed when done; then the HTML export."""
    options = " ".join(f"-p {p} {{params.{p}:q}}" for p in parameters)
    partial = f"results/analysis/{name}.partial.ipynb"
    return (
        f"{{PYTHON}} -m papermill {{input.notebook}} {partial} -k python3 {options}"
        " -p out_dir results/analysis > {log} 2>&1"
        f" && mv {partial} {{output.notebook}}"
        " && {PYTHON} -m jupyter nbconvert --to html --output-dir results/analysis"
        " {output.notebook} >> {log} 2>&1"
    )


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
        points="results/analysis/operating_points.tsv",
        notebook="results/analysis/tradeoff.ipynb",
        html="results/analysis/tradeoff.html",
    log:
        "results/logs/analysis/tradeoff.log",
    params:
        sweeps=lambda wc, input: ",".join(input.sweeps),
        methods=json.dumps(METHOD_INFO),
        split=config["analysis"]["split"],
        max_drop=config["analysis"]["max_drop"],
    shell:
        notebook_shell("tradeoff", ["sweeps", "methods", "split", "max_drop"])


rule exits_notebook:
    input:
        notebook="results/analysis/exits.source.ipynb",
        logits=run_files("exit_logits.npz"),
        calibration=run_files("calibration.json"),  # temperatures (confidence policy)
        sweeps=run_files("sweep.tsv"),  # the knob chosen on dev
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
        methods=json.dumps(METHOD_INFO),
        policies=json.dumps(config["sweep"]["policies"]),
        split=config["analysis"]["split"],
        max_drop=config["analysis"]["max_drop"],
    shell:
        notebook_shell("exits", ["runs", "methods", "policies", "split", "max_drop"])


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
        sweeps=run_files("sweep.tsv"),
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
        sweeps=lambda wc, input: ",".join(input.sweeps),
        methods=json.dumps(METHOD_INFO),
        max_drop=config["analysis"]["max_drop"],
    shell:
        notebook_shell("seeds", ["sweeps", "methods", "max_drop"])


def notebook_outputs():
    """Every notebook's outputs (figures, tables, executed notebooks, HTML)."""
    rules_ = (rules.tradeoff_notebook, rules.exits_notebook, rules.calibration_notebook)
    rules_ += (rules.difficulty_notebook, rules.seeds_notebook)
    return [path for rule_ in rules_ for path in rule_.output]
