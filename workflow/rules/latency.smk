# Real early exiting, timed: the engine at the knob chosen on dev (and two others) and at
# full depth, batch sizes 1 and 32, for every early-exit run, in interleaved rounds (every
# setting once per round), on the first test examples; then the knob chosen on dev over
# every test example, checked against the stored outputs (measured_speedup.tsv). One job times every run, one after the other, in one
# process:
# all timings share the same conditions, the start-up (imports) is paid once, and runs of
# one architecture can be checked to agree at full depth (latency.full_depth_tolerance).
# It takes every core, so no other job shares the machine while it measures. The runs
# timed (TIMED) are planned in common.smk (early_exit.config.plan).


rule latency:
    input:
        models=[f"{run['run_dir']}/model" for run in TIMED],
        calibration=[f"{run['run_dir']}/calibration.json" for run in TIMED],
        sweeps=[f"{run['run_dir']}/sweep.tsv" for run in TIMED],
        # the simulation the engine is checked against
        logits=[f"{run['run_dir']}/exit_logits.npz" for run in TIMED],
        points="results/analysis/operating_points.tsv",  # the knob chosen on dev
        data=expand("data/{task}/manifest.json", task=TASKS),
    output:
        tables=[f"{run['run_dir']}/latency.tsv" for run in TIMED],
        # every run's knob over the whole test split, beside its layer speed-up
        split="results/analysis/measured_speedup.tsv",
    log:
        "results/logs/latency/latency.log",
    params:
        runs=TIMED,
        settings=config["latency"],
        device=config["device"],
    threads: every_core()
    # first once its inputs are there: the notebooks that are ready with it then run side
    # by side after it (with the latency notebook), instead of before it, one core idle
    priority: 2
    resources:
        mem_mb=4000,
        runtime=10 + 5 * len(TIMED),
    script:
        "../scripts/latency.py"
