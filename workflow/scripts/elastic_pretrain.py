from early_exit.recipes.elastic_pretrain import pretrain
from early_exit.workflow.joblog import job_log

p = snakemake.params
with job_log(snakemake.log[0]):
    pretrain(
        p.data_dir,
        snakemake.output.backbone,
        p.state_dir,
        p.backbone,
        p.pretrain,
        p.training,
        int(snakemake.wildcards.seed),
        p.device,
        snakemake.threads,
    )
