from early_exit.calibration import calibrate_file
from early_exit.joblog import job_log

with job_log(snakemake.log[0]):
    calibrate_file(snakemake.input.logits, snakemake.output.report)
