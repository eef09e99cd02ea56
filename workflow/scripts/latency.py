from early_exit.inference.latency import LatencySettings, time_runs
from early_exit.support.joblog import job_log

p = snakemake.params
with job_log(snakemake.log[0]):
    time_runs(
        p.runs,
        snakemake.output.tables,
        snakemake.input.points,
        LatencySettings.from_config(p.settings),
        p.device,
        snakemake.threads,
        split_path=snakemake.output.split,
    )
