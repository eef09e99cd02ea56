from early_exit.data.prepare import prepare_task
from early_exit.support.joblog import job_log

with job_log(snakemake.log[0]):
    prepare_task(
        snakemake.wildcards.task,
        snakemake.params.spec,
        snakemake.params.out_dir,
        snakemake.params.seed,
    )
