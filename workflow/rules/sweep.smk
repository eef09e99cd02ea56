# Temperature calibration and the policy sweeps, from a run's stored logits. One job per
# run does both: each takes well under a second, less than starting a job.
rule sweep:
    input:
        logits="results/{task}/{method}/seed{seed}/exit_logits.npz",
    output:
        calibration="results/{task}/{method}/seed{seed}/calibration.json",
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
