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
        figure_flops=report(
            "results/analysis/tradeoff_flops.png",
            caption="../report/tradeoff_flops.rst",
            category="Trade-off",
        ),
        table=report(
            "results/analysis/results_table.md",
            caption="../report/results_table.rst",
            category="Results",
        ),
        per_task=expand("results/analysis/results_{task}.md", task=TASKS),
        policies="results/analysis/policies.md",
        elue=report("results/analysis/elue.md", caption="../report/elue.rst", category="Results"),
        points="results/analysis/operating_points.tsv",
        notebook="results/analysis/tradeoff.ipynb",
    log:
        "results/logs/analysis/tradeoff.log",
    params:
        sweeps=lambda wc, input: ",".join(input.sweeps),
        methods=json.dumps(methods_info()),
        split=config["analysis"]["split"],
        max_drop=config["analysis"]["max_drop"],
        partial="results/analysis/tradeoff.partial.ipynb",
    shell:
        "{PYTHON} -m papermill {input.notebook} {params.partial} -k python3"
        " -p sweeps {params.sweeps:q} -p methods {params.methods:q} -p out_dir results/analysis"
        " -p split {params.split} -p max_drop {params.max_drop} > {log} 2>&1"
        " && mv {params.partial} {output.notebook}"
