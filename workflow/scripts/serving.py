from early_exit.serving.under_load import ServingSettings, serve_runs
from early_exit.support.joblog import job_log

p = snakemake.params
with job_log(snakemake.log[0]):
    serve_runs(
        p.runs,
        snakemake.output.tables,
        snakemake.input.points,
        ServingSettings.from_config(p.settings),
        p.device,
        snakemake.threads,
    )
