from early_exit.joblog import job_log
from early_exit.sweep import sweep_file

w = snakemake.wildcards
with job_log(snakemake.log[0]):
    sweep_file(
        snakemake.input.logits,
        snakemake.output.table,
        snakemake.params.policies,
        None,
        {"task": w.task, "method": w.method, "seed": int(w.seed)},
        snakemake.input.calibration,
    )
