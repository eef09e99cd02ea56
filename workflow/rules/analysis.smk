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
        sweeps=all_runs("results/{task}/{method}/seed{seed}/sweep.tsv"),
    output:
        figure=report(
            "results/analysis/tradeoff.png",
            caption="../report/tradeoff.rst",
            category="Trade-off",
        ),
        table=report(
            "results/analysis/results_table.md",
            caption="../report/results_table.rst",
            category="Trade-off",
        ),
        notebook="results/analysis/tradeoff.ipynb",
    log:
        "results/logs/analysis/tradeoff.log",
    params:
        sweeps=lambda wc, input: ",".join(input.sweeps),
        split=config["analysis"]["split"],
        max_drop=config["analysis"]["max_drop"],
        partial="results/analysis/tradeoff.partial.ipynb",
    shell:
        "{PYTHON} -m papermill {input.notebook} {params.partial} -k python3"
        " -p sweeps {params.sweeps:q} -p figure {output.figure} -p table {output.table}"
        " -p split {params.split} -p max_drop {params.max_drop} > {log} 2>&1"
        " && mv {params.partial} {output.notebook}"
