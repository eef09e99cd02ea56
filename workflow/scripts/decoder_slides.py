from early_exit.slides.decoder import write_decoder_slides
from early_exit.support.joblog import job_log

with job_log(snakemake.log[0]):
    write_decoder_slides(dict(snakemake.input.items()), snakemake.output.slides)
