# SplitEE: cross-task prediction (a trained run answering another task with the same
# labels) and the online split-layer bandit simulated on that stream.
wildcard_constraints:
    source="[A-Za-z0-9_.-]+",
    target="[A-Za-z0-9_.-]+",


rule predict_transfer:
    input:
        model="results/{task}/{method}/seed{seed}/model",
        data="data/{target}/manifest.json",
    output:
        logits="results/{task}/{method}/seed{seed}/transfer/{target}/exit_logits.npz",
    log:
        "results/logs/predict_transfer/{task}/{method}/seed{seed}/{target}.log",
    params:
        data_dir="data/{target}",
        transfer=lambda wc: transfer_params(config, wc.task, wc.target),
        batch_size=config["predict"]["batch_size"],
        device=config["device"],
    threads: model_threads()
    resources:
        mem_mb=8000,
        runtime=60,
    script:
        "../scripts/predict_transfer.py"


rule splitee:
    input:
        logits="results/{source}/{method}/seed{seed}/transfer/{target}/exit_logits.npz",
    output:
        table="results/splitee/{source}/{target}/{method}/seed{seed}/splitee.tsv",
        regret="results/splitee/{source}/{target}/{method}/seed{seed}/regret.tsv",
    log:
        "results/logs/splitee/{source}/{target}/{method}/seed{seed}.log",
    params:
        settings=SPLITEE,
        alphas=lambda wc: pair_alpha(SPLITEE, splitee_pair(wc)),
        split=lambda wc: splitee_pair(wc).get("split", "test"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/splitee.py"


rule splitee_slides:
    input:
        summary="results/analysis/splitee_summary.tsv" if SPLITEE else [],
    output:
        slides="results/slides/generated/splitee.md",
    log:
        "results/logs/splitee_slides.log",
    params:
        settings=SPLITEE,  # lambda, o and alpha for the cost-model slide
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/splitee_slides.py"
