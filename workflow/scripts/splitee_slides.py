from early_exit.slides.splitee_slides import write_splitee_slides
from early_exit.support.joblog import job_log

with job_log(snakemake.log[0]):
    write_splitee_slides(
        snakemake.params.settings, snakemake.input.summary or None, snakemake.output.slides
    )
