from early_exit.exits.operating_points import write_operating_points
from early_exit.support.joblog import job_log

with job_log(snakemake.log[0]):
    write_operating_points(
        list(snakemake.input.sweeps), snakemake.params.max_drop, snakemake.output.points
    )
