# Real early exiting, timed: the engine at the knob chosen on dev (and two others) and at
# full depth, batch sizes 1 and 32, for every early-exit method. A timing job takes every
# core, so no other job shares the machine while it measures.


def every_core():
    """All the cores of a local run, so that a timing job runs alone; on a cluster
    (no --cores) each job is its own allocation, and 8 threads as the training jobs."""
    try:
        return workflow.cores
    except WorkflowError:
        return 8


def criterion_options(wc):
    """Options of the method's criterion in the task's sweep config (patience: tau)."""
    policy = METHOD_INFO[wc.method]["criterion"]
    cfg = task_policies(config, wc.task).get(policy, {})
    return {key: cfg[key] for key in ("tau",) if key in cfg}


rule latency:
    input:
        model="results/{task}/{method}/seed{seed}/model",
        calibration="results/{task}/{method}/seed{seed}/calibration.json",
        sweep="results/{task}/{method}/seed{seed}/sweep.tsv",
        points="results/analysis/operating_points.tsv",  # the knob chosen on dev
        data=rules.prepare_data.output,
    output:
        table="results/{task}/{method}/seed{seed}/latency.tsv",
    log:
        "results/logs/latency/{task}/{method}/seed{seed}.log",
    params:
        run_dir=run_dir,
        data_dir="data/{task}",
        policy=lambda wc: METHOD_INFO[wc.method]["criterion"],
        options=criterion_options,
        settings=config["latency"],
        device=config["device"],
    threads: every_core()
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/latency.py"
