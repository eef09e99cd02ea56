from early_exit.decoder.settings import decoder_settings
from early_exit.decoder.stage import exits_job
from early_exit.support.joblog import job_log

with job_log(snakemake.log[0]):
    exits_job(
        decoder_settings(snakemake.config),
        snakemake.input.model,
        snakemake.output.exits.rsplit("/", 1)[0],
    )
