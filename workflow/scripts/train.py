from early_exit.runners.finetune import finetune
from early_exit.runners.predict import predict_trained
from early_exit.runners.spec import RunSpec
from early_exit.support.joblog import job_log

with job_log(snakemake.log[0]):
    finetune(RunSpec.from_snakemake(snakemake, snakemake.output.model))
    predict_trained(snakemake)
