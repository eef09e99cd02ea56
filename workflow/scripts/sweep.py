from early_exit.exits.calibration import calibrate_file
from early_exit.exits.sweep import sweep_file
from early_exit.support.joblog import job_log

w = snakemake.wildcards
with job_log(snakemake.log[0]):
    calibrate_file(snakemake.input.logits, snakemake.output.calibration)
    sweep_file(
        snakemake.input.logits,
        snakemake.output.table,
        snakemake.params.policies,
        None,
        {"task": w.task, "method": w.method, "seed": int(w.seed)},
        snakemake.output.calibration,
    )
