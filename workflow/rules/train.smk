rule train:
    input:
        rules.prepare_data.output,
    output:
        model=directory("results/{task}/{method}/seed{seed}/model"),
    log:
        "results/logs/train/{task}/{method}/seed{seed}.log",
    params:
        data_dir="data/{task}",
        # not an output: Snakemake must not delete it, it is what a rerun resumes from
        state_dir=lambda wc: f"{run_dir(wc)}/train_state",
        backbone=config["backbone"],
        method=lambda wc: config["methods"][wc.method],
        training=lambda wc: training_settings(config, wc.method),
        device=config["device"],
    threads: 8
    resources:
        mem_mb=8000,
        runtime=240,
    script:
        "../scripts/train.py"
