from early_exit.support.download import download_dataset
from early_exit.support.joblog import job_log

spec = snakemake.params.spec
with job_log(snakemake.log[0]):
    download_dataset(spec["path"], spec["name"], snakemake.output[0], spec["revision"])
