rule predict:
    input:
        model="results/{task}/{method}/seed{seed}/model",
        data=rules.prepare_data.output,
    output:
        logits="results/{task}/{method}/seed{seed}/exit_logits.npz",
    log:
        "results/logs/predict/{task}/{method}/seed{seed}.log",
    params:
        data_dir="data/{task}",
        batch_size=config["predict"]["batch_size"],
        device=config["device"],
    threads: model_threads()
    resources:
        mem_mb=8000,
        runtime=60,
    script:
        "../scripts/predict.py"
