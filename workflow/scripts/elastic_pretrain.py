from early_exit.runners.elastic_pretrain import pretrain
from early_exit.runners.spec import RunSpec
from early_exit.support.joblog import job_log

with job_log(snakemake.log[0]):
    pretrain(RunSpec.from_snakemake(snakemake, snakemake.output.backbone))
