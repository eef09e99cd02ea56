rule calibrate:
    input:
        logits="results/{task}/{method}/seed{seed}/exit_logits.npz",
    output:
        report="results/{task}/{method}/seed{seed}/calibration.json",
    log:
        "results/logs/calibrate/{task}/{method}/seed{seed}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/calibrate.py"


rule sweep:
    input:
        logits="results/{task}/{method}/seed{seed}/exit_logits.npz",
        calibration="results/{task}/{method}/seed{seed}/calibration.json",
    output:
        table="results/{task}/{method}/seed{seed}/sweep.tsv",
    log:
        "results/logs/sweep/{task}/{method}/seed{seed}.log",
    params:
        policies=lambda wc: task_policies(config, wc.task),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/sweep.py"
