from pathlib import Path

from early_exit.decoder.settings import decoder_settings
from early_exit.decoder.stage import outputs_job
from early_exit.support.joblog import job_log

with job_log(snakemake.log[0]):
    outputs_job(
        decoder_settings(snakemake.config),
        snakemake.input.model,
        Path(snakemake.input.exits).parent,
        Path(snakemake.output.tokens).parent,
    )
