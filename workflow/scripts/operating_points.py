from early_exit.analysis.operating_points import write_operating_points
from early_exit.workflow.joblog import job_log

with job_log(snakemake.log[0]):
    write_operating_points(
        list(snakemake.input.sweeps), snakemake.params.max_drop, snakemake.output.points
    )
