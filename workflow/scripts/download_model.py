from early_exit.support.download import download_model
from early_exit.support.joblog import job_log

spec = snakemake.params.spec
with job_log(snakemake.log[0]):
    download_model(spec["repo"], snakemake.output[0], spec["revision"])
