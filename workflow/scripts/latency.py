from early_exit.inference.latency import latency_file
from early_exit.workflow.joblog import job_log

p = snakemake.params
with job_log(snakemake.log[0]):
    latency_file(
        p.run_dir,
        p.data_dir,
        snakemake.output.table,
        p.policy,
        dict(snakemake.wildcards),
        snakemake.input.points,
        p.settings,
        p.device,
        snakemake.threads,
        p.options,
    )
