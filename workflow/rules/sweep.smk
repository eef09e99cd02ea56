rule sweep:
    input:
        logits="results/{task}/{method}/seed{seed}/exit_logits.npz",
    output:
        table="results/{task}/{method}/seed{seed}/sweep.tsv",
    log:
        "results/logs/sweep/{task}/{method}/seed{seed}.log",
    params:
        policies=config["sweep"]["policies"],
        splits=EVAL_SPLITS,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/sweep.py"
