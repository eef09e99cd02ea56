from pathlib import Path

from early_exit.decoder.settings import decoder_settings
from early_exit.decoder.stage import sweep_job
from early_exit.support.joblog import job_log

out = snakemake.output
with job_log(snakemake.log[0]):
    sweep_job(
        decoder_settings(snakemake.config),
        Path(snakemake.input.tokens).parent,
        out.speculative,
        out.calm,
        out.knobs,
    )
