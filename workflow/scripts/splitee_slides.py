from early_exit.analysis.splitee import write_deck_slides
from early_exit.support.joblog import job_log

with job_log(snakemake.log[0]):
    write_deck_slides(snakemake.input.table or None, snakemake.output.slides)
