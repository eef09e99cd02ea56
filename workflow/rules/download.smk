# Hub models and datasets, fetched once into `hub_cache` where there is internet
# (local rules: the login node on a cluster); every other job reads only that copy.
# `snakemake download --cores 1` fetches them all without running anything else.


rule download_model:
    output:
        directory(f"{HUB_CACHE}/models/{{repo}}"),
    log:
        "results/logs/download/model-{repo}.log",
    params:
        spec=lambda wc: HUB_MODELS[wc.repo],
    threads: 1
    script:
        "../scripts/download_model.py"


rule download_dataset:
    output:
        directory(f"{HUB_CACHE}/datasets/{{dataset}}"),
    log:
        "results/logs/download/dataset-{dataset}.log",
    params:
        spec=lambda wc: HUB_DATASETS[wc.dataset],
    threads: 1
    script:
        "../scripts/download_dataset.py"


rule download:
    input:
        expand(f"{HUB_CACHE}/models/{{repo}}", repo=HUB_MODELS),
        expand(f"{HUB_CACHE}/datasets/{{dataset}}", dataset=HUB_DATASETS),
