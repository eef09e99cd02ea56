# Early exiting under load: for each early-exit run of one task (serving.task), the real
# HTTP server at the knob chosen on dev, offered open-loop Poisson arrivals at several
# rates, in three modes (full depth with dynamic batching, the shrinking batch, the
# refilling scheduler). One job measures every run; it takes every core, so no other job
# shares the machine while it measures (as the latency stage).
# The runs served (SERVED) are planned in common.smk.


rule serving:
    input:
        models=[f"{run['run_dir']}/model" for run in SERVED],
        calibration=[f"{run['run_dir']}/calibration.json" for run in SERVED],
        points="results/analysis/operating_points.tsv",  # the knob chosen on dev
        data=expand("data/{task}/manifest.json", task=[config["serving"]["task"]]),
    output:
        tables=[f"{run['run_dir']}/serving.tsv" for run in SERVED],
    log:
        "results/logs/serving/serving.log",
    params:
        runs=SERVED,
        settings=config["serving"],
        device=config["device"],
    threads: every_core()
    priority: 2
    resources:
        mem_mb=4000,
        runtime=5 + 2 * len(SERVED),
    script:
        "../scripts/serving.py"
