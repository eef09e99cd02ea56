from early_exit.serving.under_load import serve_runs
from early_exit.support.joblog import job_log

p = snakemake.params
with job_log(snakemake.log[0]):
    serve_runs(
        p.runs,
        snakemake.output.tables,
        snakemake.input.points,
        p.settings,
        p.device,
        snakemake.threads,
    )
