from pathlib import Path

from early_exit.decoder.settings import decoder_settings
from early_exit.decoder.stage import benchmark_job
from early_exit.support.joblog import job_log

inp, out = snakemake.input, snakemake.output
with job_log(snakemake.log[0]):
    benchmark_job(
        decoder_settings(snakemake.config),
        inp.model,
        Path(inp.exits).parent,
        Path(inp.tokens).parent,
        {"speculative": inp.speculative, "calm": inp.calm},
        inp.knobs,
        {"runs": out.runs, "summary": out.summary, "check": out.check},
    )
