from early_exit.exits.calibration import calibrate_file
from early_exit.workflow.joblog import job_log

with job_log(snakemake.log[0]):
    calibrate_file(snakemake.input.logits, snakemake.output.report)
